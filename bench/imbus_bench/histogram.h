// Internal to imbus-bench. A small HDR-style latency histogram: log-linear buckets
// (128 linear sub-buckets per power of two, so any recorded value is reported within
// 0.8 %), fixed memory (~60 KiB), O(1) Record. Values are nanoseconds. Written here
// rather than depending on HdrHistogram_c, which Debian bookworm does not package
// for C++. Not thread-safe: one per thread, Merge() to combine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace imbus::bench {

class Histogram {
 public:
  Histogram();

  void Record(int64_t value_ns);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }
  // The value at quantile q (0..1): the midpoint of the bucket holding it, clamped
  // to [min, max] so p100 is the exact max.
  int64_t Quantile(double q) const;

 private:
  static constexpr int kSubBits = 8;  // 256 values per power of two, half of them new
  static size_t IndexOf(uint64_t v);
  static uint64_t LowestOf(size_t index);
  static uint64_t HighestOf(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  int64_t sum_ = 0;
};

}  // namespace imbus::bench

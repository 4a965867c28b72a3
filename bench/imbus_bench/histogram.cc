#include "bench/imbus_bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace imbus::bench {

namespace {
constexpr size_t kHalf = size_t{1} << 7;  // 2^(kSubBits-1)
}  // namespace

Histogram::Histogram() : counts_(IndexOf(~uint64_t{0}) + 1, 0) {}

// Values below 2^kSubBits have a bucket each; above, value v with its top bit at
// position m lands in bucket shift*kHalf + (v >> shift) with shift = m - 7, so each
// power of two is split into 128 equal buckets (width 2^shift, values >= 128 * 2^shift).
size_t Histogram::IndexOf(uint64_t v) {
  const int msb = 63 - std::countl_zero(v | 1);
  const int shift = std::max(0, msb - (kSubBits - 1));
  return static_cast<size_t>(shift) * kHalf + static_cast<size_t>(v >> shift);
}

uint64_t Histogram::LowestOf(size_t index) {
  const size_t shift = index < 2 * kHalf ? 0 : index / kHalf - 1;
  return static_cast<uint64_t>(index - shift * kHalf) << shift;
}

uint64_t Histogram::HighestOf(size_t index) {
  const size_t shift = index < 2 * kHalf ? 0 : index / kHalf - 1;
  return LowestOf(index) + ((uint64_t{1} << shift) - 1);
}

void Histogram::Record(int64_t value_ns) {
  const int64_t v = std::max<int64_t>(0, value_ns);
  ++counts_[IndexOf(static_cast<uint64_t>(v))];
  if (count_ == 0 || v < min_) min_ = v;
  max_ = std::max(max_, v);
  sum_ += v;
  ++count_;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  count_ += other.count_;
}

int64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(clamped * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t mid = LowestOf(i) + (HighestOf(i) - LowestOf(i)) / 2;
      return std::clamp(static_cast<int64_t>(mid), min_, max_);
    }
  }
  return max_;
}

}  // namespace imbus::bench

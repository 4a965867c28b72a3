// Internal to imbus-bench. The results of one scenario run: named figures in the
// order they were added and latency histograms. Printed as a table on stdout and
// written as one flat JSON object (figures at the top level, so scripts and the
// smoke test read e.g. "lost" directly; latencies under "latency_us").
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench/imbus_bench/histogram.h"

namespace imbus::bench {

class Report {
 public:
  explicit Report(std::string scenario) : scenario_(std::move(scenario)) {}

  void Note(std::string line) { notes_.push_back(std::move(line)); }
  void Set(const std::string& key, int64_t value, const std::string& unit = "");
  void Set(const std::string& key, uint64_t value, const std::string& unit = "") {
    Set(key, static_cast<int64_t>(value), unit);
  }
  void Set(const std::string& key, double value, const std::string& unit = "");
  void SetText(const std::string& key, const std::string& value);
  void AddLatency(const std::string& name, const Histogram& h) { latencies_.emplace_back(name, h); }

  void Print(std::FILE* out) const;
  bool WriteJson(const std::string& path, std::string* error) const;

 private:
  struct Figure {
    std::string key;
    std::string value;  // already formatted
    std::string unit;
    bool quoted = false;
  };
  std::string scenario_;
  std::vector<std::string> notes_;
  std::vector<Figure> figures_;
  std::vector<std::pair<std::string, Histogram>> latencies_;
};

}  // namespace imbus::bench

#include "bench/imbus_bench/report.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

namespace imbus::bench {

namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

struct Quantile {
  const char* name;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};

double Us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

void Report::Set(const std::string& key, int64_t value, const std::string& unit) {
  figures_.push_back({key, std::to_string(value), unit, false});
}

void Report::Set(const std::string& key, double value, const std::string& unit) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", std::isfinite(value) ? value : 0.0);
  figures_.push_back({key, buf, unit, false});
}

void Report::SetText(const std::string& key, const std::string& value) {
  figures_.push_back({key, value, "", true});
}

void Report::Print(std::FILE* out) const {
  std::fprintf(out, "\n== imbus-bench %s ==\n", scenario_.c_str());
  for (const auto& n : notes_) std::fprintf(out, "note: %s\n", n.c_str());
  for (const auto& f : figures_) {
    std::fprintf(out, "  %-28s %14s %s\n", f.key.c_str(), f.value.c_str(), f.unit.c_str());
  }
  if (!latencies_.empty()) {
    std::fprintf(out, "\n  %-18s %9s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "p50",
                 "p90", "p99", "p999", "max", "mean");
    for (const auto& [name, h] : latencies_) {
      std::fprintf(out, "  %-18s %9llu", name.c_str(), static_cast<unsigned long long>(h.count()));
      for (const auto& q : kQuantiles) std::fprintf(out, " %9.3f", Us(h.Quantile(q.q)) / 1000.0);
      std::fprintf(out, " %9.3f %9.3f\n", Us(h.max()) / 1000.0, h.mean() / 1e6);
    }
  }
  std::fflush(out);
}

bool Report::WriteJson(const std::string& path, std::string* error) const {
  std::ofstream f(path);
  if (!f) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  f << "{\n  \"scenario\": " << JsonString(scenario_);
  f << ",\n  \"notes\": [";
  for (size_t i = 0; i < notes_.size(); ++i) f << (i ? ", " : "") << JsonString(notes_[i]);
  f << "]";
  for (const auto& fig : figures_) {
    f << ",\n  " << JsonString(fig.key) << ": " << (fig.quoted ? JsonString(fig.value) : fig.value);
  }
  f << ",\n  \"latency_us\": {";
  for (size_t i = 0; i < latencies_.size(); ++i) {
    const auto& [name, h] = latencies_[i];
    char buf[64];
    f << (i ? "," : "") << "\n    " << JsonString(name) << ": {\"count\": " << h.count();
    for (const auto& q : kQuantiles) {
      std::snprintf(buf, sizeof(buf), "%.1f", Us(h.Quantile(q.q)));
      f << ", \"" << q.name << "\": " << buf;
    }
    std::snprintf(buf, sizeof(buf), "%.1f", Us(h.max()));
    f << ", \"max\": " << buf;
    std::snprintf(buf, sizeof(buf), "%.1f", h.mean() / 1000.0);
    f << ", \"mean\": " << buf << "}";
  }
  f << "\n  }\n}\n";
  f.close();
  if (!f) {
    *error = "writing " + path + " failed";
    return false;
  }
  return true;
}

}  // namespace imbus::bench

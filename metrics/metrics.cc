#include "metrics/metrics.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace imbus::metrics {
namespace {

// The families whose values are read at scrape time.
class Callbacks : public prometheus::Collectable {
 public:
  void Add(std::string name, std::string help, Type type,
           std::function<std::vector<Sample>()> read) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back({std::move(name), std::move(help), type, std::move(read)});
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<prometheus::MetricFamily> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) {
      prometheus::MetricFamily f;
      f.name = e.name;
      f.help = e.help;
      f.type = e.type == Type::kCounter ? prometheus::MetricType::Counter
                                        : prometheus::MetricType::Gauge;
      for (Sample& s : e.read()) {
        prometheus::ClientMetric m;
        for (auto& [k, v] : s.labels) m.label.push_back({k, v});
        if (e.type == Type::kCounter) {
          m.counter.value = s.value;
        } else {
          m.gauge.value = s.value;
        }
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  struct Entry {
    std::string name;
    std::string help;
    Type type;
    std::function<std::vector<Sample>()> read;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// Made by the first Server and never destroyed: handles stay valid until exit, also
// in threads that outlive main's objects.
struct Process {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<Callbacks> callbacks = std::make_shared<Callbacks>();
};
std::atomic<Process*> g_process{nullptr};

Process* Get() { return g_process.load(std::memory_order_acquire); }

}  // namespace

void Counter::Inc(double v) const {
  if (c_ != nullptr) c_->Increment(v);
}
void Gauge::Set(double v) const {
  if (g_ != nullptr) g_->Set(v);
}
void Gauge::Inc(double v) const {
  if (g_ != nullptr) g_->Increment(v);
}
void Gauge::Dec(double v) const {
  if (g_ != nullptr) g_->Decrement(v);
}
void Histogram::Observe(double v) const {
  if (h_ != nullptr) h_->Observe(v);
}

ScopedTimer::ScopedTimer(const Histogram& h) : h_(h) {
  if (h_.on()) start_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
}

ScopedTimer::~ScopedTimer() {
  if (!h_.on()) return;
  const int64_t ns = std::chrono::steady_clock::now().time_since_epoch().count() - start_ns_;
  h_.Observe(static_cast<double>(ns) * 1e-9);
}

bool Enabled() { return Get() != nullptr; }

Counter GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  Process* p = Get();
  if (p == nullptr) return {};
  return Counter(
      &prometheus::BuildCounter().Name(name).Help(help).Register(*p->registry).Add(labels));
}

Gauge GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  Process* p = Get();
  if (p == nullptr) return {};
  return Gauge(&prometheus::BuildGauge().Name(name).Help(help).Register(*p->registry).Add(labels));
}

Histogram GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& buckets) {
  Process* p = Get();
  if (p == nullptr) return {};
  return Histogram(&prometheus::BuildHistogram()
                        .Name(name)
                        .Help(help)
                        .Register(*p->registry)
                        .Add(labels, buckets));
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return b;
}

const std::vector<double>& SizeBuckets() {
  static const std::vector<double> b{1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return b;
}

void AddCallback(const std::string& name, const std::string& help, Type type,
                 std::function<std::vector<Sample>()> read) {
  Process* p = Get();
  if (p == nullptr) return;
  p->callbacks->Add(name, help, type, std::move(read));
}

Server::Server(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    throw std::runtime_error("--metrics-listen: want HOST:PORT, got '" + host_port + "'");
  }
  const std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoi(port) > 65535) {
    throw std::runtime_error("--metrics-listen: bad port '" + port + "'");
  }
  Process* p = Get();
  if (p == nullptr) {
    p = new Process();  // never freed: see Process
    g_process.store(p, std::memory_order_release);
  }
  try {
    // One thread answers scrapes (Prometheus asks every few seconds).
    exposer_ = std::make_unique<prometheus::Exposer>(host_port, 1);
  } catch (const std::exception& e) {
    throw std::runtime_error("--metrics-listen " + host_port + ": " + e.what());
  }
  exposer_->RegisterCollectable(p->registry);
  exposer_->RegisterCollectable(p->callbacks);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  url_ = "http://" + host + ":" + std::to_string(port_) + "/metrics";
}

Server::~Server() = default;

}  // namespace imbus::metrics

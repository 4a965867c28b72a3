// Public. The process's Prometheus metrics: handles to counters, gauges and
// histograms (prometheus-cpp underneath), values read at scrape time, and the
// HTTP exposer behind --metrics-listen. docs/operations.md lists every metric.
//
// Off unless a Server was started: before that (and in processes that never start
// one) every Get* returns an empty handle whose methods do nothing, so code can take
// its handles unconditionally. Take them once (constructors), never per message:
// a Get* call looks the series up under a lock; Inc/Observe on a handle is one
// atomic update (histograms: a short uncontended lock).
//
// Threads: every function is safe from any thread. Callbacks added with
// AddCallback run on the exposer's threads at each scrape.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Exposer;
class Registry;
}  // namespace prometheus

namespace imbus::metrics {

// Label names to values. Values must come from small fixed sets (a service, a
// command, a code, a transport): never a uid, an address or anything a client chose.
using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  Counter() = default;
  explicit Counter(prometheus::Counter* c) : c_(c) {}
  void Inc(double v = 1.0) const;
  bool on() const { return c_ != nullptr; }

 private:
  prometheus::Counter* c_ = nullptr;  // owned by the registry (lives forever)
};

class Gauge {
 public:
  Gauge() = default;
  explicit Gauge(prometheus::Gauge* g) : g_(g) {}
  void Set(double v) const;
  void Inc(double v = 1.0) const;
  void Dec(double v = 1.0) const;
  bool on() const { return g_ != nullptr; }

 private:
  prometheus::Gauge* g_ = nullptr;
};

class Histogram {
 public:
  Histogram() = default;
  explicit Histogram(prometheus::Histogram* h) : h_(h) {}
  void Observe(double v) const;
  bool on() const { return h_ != nullptr; }

 private:
  prometheus::Histogram* h_ = nullptr;
};

// Observes the seconds from its construction to its destruction into `h`; reads no
// clock when `h` is empty.
class ScopedTimer {
 public:
  explicit ScopedTimer(const Histogram& h);
  ~ScopedTimer();
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  const Histogram& h_;
  int64_t start_ns_ = 0;
};

// True once a Server runs in this process.
bool Enabled();

// The series `name`{labels} (created on first use; the same name must keep one
// type and help text). Empty handles when metrics are off.
Counter GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
Gauge GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
Histogram GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& buckets);

// Bucket bounds: request and query latencies in seconds (100 µs .. 10 s), and sizes
// (batch lengths, 1 .. 512).
const std::vector<double>& LatencyBuckets();
const std::vector<double>& SizeBuckets();

// A value the owner already keeps (a table's size, a relaxed atomic counter), read
// at scrape time instead of updated on the hot path.
struct Sample {
  Labels labels;
  double value = 0;
};
enum class Type { kCounter, kGauge };
// Adds the family `name` whose samples `read` returns at every scrape. `read` runs
// on an exposer thread: it must be thread-safe and must not block for long. Does
// nothing when metrics are off. A family name is added once per process.
void AddCallback(const std::string& name, const std::string& help, Type type,
                 std::function<std::vector<Sample>()> read);

// The HTTP endpoint: GET /metrics answers the text format (version 0.0.4).
class Server {
 public:
  // Serves on "HOST:PORT" (port 0: any free port; read it back with port()) and turns
  // metrics on for the process. Throws std::runtime_error when the address is
  // malformed or cannot be bound (a startup error). One per process.
  explicit Server(const std::string& host_port);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // "http://HOST:PORT/metrics" as bound.
  const std::string& url() const { return url_; }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string url_;
};

}  // namespace imbus::metrics

#include "test/integration/stack.h"

#include <sstream>
#include <stdexcept>

#include "test/support/mariadb.h"

namespace imbus::testing {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds kStartTimeout{15000};
}  // namespace

Stack::Stack(StackOptions options) : options_(options) {
  bus_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
  database_ = NewDatabaseName("it");
}

Stack::~Stack() {
  for (auto& e : edges_) e->Kill();
  for (auto& a : actors_) a->Kill();
  broker_.Kill();
}

void Stack::StartBroker() {
  broker_ = Process::Start(IMBUS_BROKER_BIN,
                           {"--bind", bus_endpoint_, "--heartbeat-ms",
                            std::to_string(options_.heartbeat_ms), "--queue-timeout-ms",
                            std::to_string(options_.queue_timeout_ms), "--log-level", "debug"});
  if (!broker_.WaitForLog("listening on", kStartTimeout)) {
    throw std::runtime_error("broker did not start:\n" + broker_.Log());
  }
}

size_t Stack::StartEdge() {
  const size_t index = edges_.size();
  std::vector<std::string> args = {
      "--listen", "127.0.0.1:0", "--broker", bus_endpoint_, "--name",
      "edge" + std::to_string(index), "--threads", std::to_string(options_.edge_threads),
      "--idle-timeout-s", std::to_string(options_.idle_timeout_s), "--request-timeout-ms",
      std::to_string(options_.request_timeout_ms), "--heartbeat-ms",
      std::to_string(options_.heartbeat_ms), "--log-level", "debug"};
  const bool tls = !tls_cert_file_.empty() && !tls_key_file_.empty();
  if (tls) {
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:0", "--tls-cert", tls_cert_file_,
                             "--tls-key", tls_key_file_});
  }
  auto p = std::make_unique<Process>(Process::Start(IMBUS_EDGE_BIN, args));
  const auto line = p->WaitForLog("listening on", kStartTimeout);
  if (!line) throw std::runtime_error("edge did not start:\n" + p->Log());
  edge_ports_.push_back(PortFromLogLine(*line));
  int tls_port = 0;
  if (tls) {
    const auto tls_line = p->WaitForLog("TLS listener on", kStartTimeout);
    if (!tls_line) throw std::runtime_error("edge TLS listener did not start:\n" + p->Log());
    tls_port = PortFromLogLine(*tls_line);
  }
  edge_tls_ports_.push_back(tls_port);
  edges_.push_back(std::move(p));
  return index;
}

size_t Stack::StartActor(const std::string& services, int threads, int64_t pwhash_mem) {
  const DbConfig& db = options_.db != nullptr ? *options_.db : SharedMariaDb();
  const size_t index = actors_.size();
  std::vector<std::string> args = {"--services",    services,     "--broker", bus_endpoint_,
                                   "--threads",     std::to_string(threads),
                                   "--db-name",     database_,    "--pwhash-ops", "1",
                                   "--pwhash-mem",  std::to_string(pwhash_mem),       "--heartbeat-ms",
                                   std::to_string(options_.heartbeat_ms), "--log-level", "debug"};
  if (!db.socket.empty()) {
    args.insert(args.end(), {"--db-socket", db.socket});
  } else {
    args.insert(args.end(), {"--db-host", db.host, "--db-port", std::to_string(db.port)});
  }
  args.insert(args.end(), {"--db-user", db.user});
  if (!db.password.empty()) args.insert(args.end(), {"--db-password", db.password});
  actors_.push_back(std::make_unique<Process>(Process::Start(IMBUS_ACTOR_BIN, args)));
  return index;
}

std::string Stack::Logs() {
  std::ostringstream out;
  out << "===== broker (" << broker_.log_path() << ")\n" << broker_.Log();
  for (size_t i = 0; i < edges_.size(); ++i) {
    out << "===== edge " << i << " (" << edges_[i]->log_path() << ")\n" << edges_[i]->Log();
  }
  for (size_t i = 0; i < actors_.size(); ++i) {
    out << "===== actor " << i << " (" << actors_[i]->log_path() << ")\n" << actors_[i]->Log();
  }
  std::string s = out.str();
  constexpr size_t kMax = 60000;
  if (s.size() > kMax) s = "...\n" + s.substr(s.size() - kMax);
  return s;
}

}  // namespace imbus::testing

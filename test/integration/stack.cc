#include "test/integration/stack.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "test/support/mariadb.h"

namespace imbus::testing {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds kStartTimeout{15000};
}  // namespace

Stack::Stack(StackOptions options) : options_(options) {
  // A standalone broker binds port 0 and reports the port it got (StartBroker);
  // restarts reuse it. A pair needs each other's state endpoints before either
  // starts, so its ports are probed.
  bus_endpoint_ = "tcp://127.0.0.1:0";
  if (options_.broker_pair) {
    bus_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    backup_endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    for (std::string& e : state_endpoints_) e = "tcp://127.0.0.1:" + std::to_string(FreePort());
  }
  database_ = NewDatabaseName("it");
  if (options_.curve) MakeCurveKeys();
}

Stack::~Stack() {
  for (auto& e : edges_) e->Kill();
  for (auto& a : actors_) a->Kill();
  broker_.Kill();
  backup_.Kill();
  if (!key_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(key_dir_, ec);
  }
}

void Stack::MakeCurveKeys() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/imbus-curve-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp for CURVE keys");
  key_dir_ = tmpl;
  std::string error;
  std::string broker_public;
  std::string broker_secret;
  if (!bus::GenerateCurveKeyPair(&broker_public, &broker_secret, &error) ||
      !bus::WriteCurveKeyFiles(key_dir_ + "/broker", broker_public, broker_secret, &error)) {
    throw std::runtime_error("CURVE keys: " + error);
  }
  for (bus::CurveClientKeys* k : {&peer_curve_, &control_curve_}) {
    k->server_public_key = broker_public;
    if (!bus::GenerateCurveKeyPair(&k->public_key, &k->secret_key, &error)) {
      throw std::runtime_error("CURVE keys: " + error);
    }
  }
  std::ofstream allow(key_dir_ + "/allow");
  allow << "# peers of this test stack\n"
        << peer_curve_.public_key << " edges-and-actors\n\n"
        << control_curve_.public_key << "\n";
}

void Stack::AddCurveArgs(const bus::CurveClientKeys& curve, std::vector<std::string>* args,
                         std::map<std::string, std::string>* env) const {
  if (!curve.enabled()) return;
  args->insert(args->end(), {"--curve-server-key", curve.server_public_key});
  (*env)[bus::kCurveSecretEnv] = curve.secret_key;
}

void Stack::StartBroker(size_t i) {
  std::vector<std::string> args = {"--bind",
                                   bus_endpoint(i),
                                   "--heartbeat-ms",
                                   std::to_string(options_.heartbeat_ms),
                                   "--queue-timeout-ms",
                                   std::to_string(options_.queue_timeout_ms),
                                   "--log-level",
                                   "debug"};
  args.insert(args.end(), options_.broker_args.begin(), options_.broker_args.end());
  if (options_.curve) {
    args.insert(args.end(), {"--curve-secret-file", key_dir_ + "/broker.key", "--curve-allow",
                             key_dir_ + "/allow"});
  }
  if (options_.broker_pair) {
    args.insert(args.end(),
                {"--state-bind", state_endpoints_[i], "--peer", state_endpoints_[1 - i]});
    if (i == 1) args.push_back("--backup");
  }
  Process& p = broker(i);
  p = Process::Start(IMBUS_BROKER_BIN, args);
  const auto line = p.WaitForLog("listening on", kStartTimeout);
  if (!line) throw std::runtime_error("broker did not start:\n" + p.Log());
  if (i == 0 && bus_endpoint_ == "tcp://127.0.0.1:0") {
    bus_endpoint_ = "tcp://127.0.0.1:" + std::to_string(PortFromLogLine(*line));
  }
}

size_t Stack::StartEdge(const bus::CurveClientKeys* curve) {
  const size_t index = edges_.size();
  auto p = LaunchEdge(index, 0, curve != nullptr ? *curve : peer_curve_);
  edges_.push_back(std::move(p));
  return index;
}

void Stack::RestartEdge(size_t i) {
  edges_.at(i)->Kill();
  edges_[i] = LaunchEdge(i, edge_ports_.at(i), peer_curve_);
}

std::unique_ptr<Process> Stack::LaunchEdge(size_t index, int port,
                                           const bus::CurveClientKeys& curve) {
  std::vector<std::string> args = {"--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--broker",
                                   peers_endpoint(),
                                   "--name",
                                   "edge" + std::to_string(index),
                                   "--threads",
                                   std::to_string(options_.edge_threads),
                                   "--idle-timeout-s",
                                   std::to_string(options_.idle_timeout_s),
                                   "--request-timeout-ms",
                                   std::to_string(options_.request_timeout_ms),
                                   "--heartbeat-ms",
                                   std::to_string(options_.heartbeat_ms),
                                   "--log-level",
                                   "debug"};
  args.insert(args.end(), options_.edge_args.begin(), options_.edge_args.end());
  const bool tls = !tls_cert_file_.empty() && !tls_key_file_.empty();
  if (tls) {
    const int tls_port = port == 0 ? 0 : edge_tls_ports_.at(index);
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                             tls_cert_file_, "--tls-key", tls_key_file_});
  }
  std::map<std::string, std::string> env;
  AddCurveArgs(curve, &args, &env);
  auto p = std::make_unique<Process>(Process::Start(IMBUS_EDGE_BIN, args, env));
  const auto line = p->WaitForLog("listening on", kStartTimeout);
  if (!line) throw std::runtime_error("edge did not start:\n" + p->Log());
  int tls_port = 0;
  if (tls) {
    const auto tls_line = p->WaitForLog("TLS listener on", kStartTimeout);
    if (!tls_line) throw std::runtime_error("edge TLS listener did not start:\n" + p->Log());
    tls_port = PortFromLogLine(*tls_line);
  }
  if (port == 0) {
    edge_ports_.push_back(PortFromLogLine(*line));
    edge_tls_ports_.push_back(tls_port);
  }
  return p;
}

size_t Stack::StartActor(const std::string& services, int threads, int64_t pwhash_mem,
                         const bus::CurveClientKeys* curve) {
  const DbConfig& db = options_.db != nullptr ? *options_.db : SharedMariaDb();
  const size_t index = actors_.size();
  std::vector<std::string> args = {"--services",     services,
                                   "--broker",       peers_endpoint(),
                                   "--threads",      std::to_string(threads),
                                   "--db-name",      database_,
                                   "--heartbeat-ms", std::to_string(options_.heartbeat_ms),
                                   "--log-level",    "debug"};
  if (pwhash_mem != kDefaultPwhashCost) {
    args.insert(args.end(), {"--pwhash-ops", "1", "--pwhash-mem", std::to_string(pwhash_mem)});
  }
  if (!db.hosts.empty()) {
    args.insert(args.end(), {"--db-hosts", db.hosts});
  } else if (!db.socket.empty()) {
    args.insert(args.end(), {"--db-socket", db.socket});
  } else {
    args.insert(args.end(), {"--db-host", db.host, "--db-port", std::to_string(db.port)});
  }
  args.insert(args.end(), {"--db-user", db.user});
  if (!db.password.empty()) args.insert(args.end(), {"--db-password", db.password});
  std::map<std::string, std::string> env;
  args.insert(args.end(), options_.actor_args.begin(), options_.actor_args.end());
  AddCurveArgs(curve != nullptr ? *curve : peer_curve_, &args, &env);
  actors_.push_back(std::make_unique<Process>(Process::Start(IMBUS_ACTOR_BIN, args, env)));
  return index;
}

// Each process's state and the end of its log: a process that logs the same line
// over and over must not push another's last words (a crash) out of the report.
std::string Stack::Logs() {
  std::ostringstream out;
  auto add = [&out](const std::string& name, Process& p) {
    constexpr size_t kMaxPerProcess = 12000;
    std::string log = p.Log();
    if (log.size() > kMaxPerProcess) log = "...\n" + log.substr(log.size() - kMaxPerProcess);
    out << "===== " << name << " (" << p.State() << "; " << p.log_path() << ")\n" << log;
  };
  add("broker", broker_);
  if (options_.broker_pair) add("backup broker", backup_);
  for (size_t i = 0; i < edges_.size(); ++i) add("edge " + std::to_string(i), *edges_[i]);
  for (size_t i = 0; i < actors_.size(); ++i) add("actor " + std::to_string(i), *actors_[i]);
  return out.str();
}

}  // namespace imbus::testing

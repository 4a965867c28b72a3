// imbus-actor: serves one or more services (auth, ...) for the broker.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <sodium.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "bus/curve_flags.h"
#include "bus/logging.h"

#include "actors/actor_host.h"
#include "metrics/metrics.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  using imbus::actors::ActorHost;
  ActorHost::Options o;
  std::string services = "all";
  bool list_services = false;
  std::string log_level = "info";
  imbus::bus::CurvePeerFlags curve;
  o.service_options.pwhash_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  o.service_options.pwhash_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

  CLI::App app{"imbus-actor: worker process serving imbus services over the broker"};
  app.option_defaults()->always_capture_default();
  app.add_option("--services", services,
                 "comma-separated services to serve, or 'all' (see --list-services)")
      ->envname("IMBUS_SERVICES");
  app.add_flag("--list-services", list_services, "print the services this binary serves and exit");
  app.add_option("--broker", o.broker,
                 "broker endpoint; a broker pair as two, comma-separated "
                 "(tcp://a:5555,tcp://b:5555)")
      ->envname("IMBUS_BROKER");
  app.add_option("--threads", o.threads, "worker threads (each: a bus socket, a DB connection)")
      ->envname("IMBUS_ACTOR_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "bus heartbeat interval")
      ->envname("IMBUS_HEARTBEAT_MS")
      ->check(CLI::Range(50, 60000));
  app.add_option("--db-socket", o.db.socket, "MariaDB unix socket (overrides host/port)")
      ->envname("IMBUS_DB_SOCKET");
  app.add_option("--db-host", o.db.host, "MariaDB host")->envname("IMBUS_DB_HOST");
  app.add_option("--db-port", o.db.port, "MariaDB port")->envname("IMBUS_DB_PORT");
  std::string db_hosts;
  app.add_option("--db-hosts", db_hosts,
                 "the nodes of a Galera cluster, comma-separated host:port or socket paths "
                 "(overrides --db-socket/--db-host/--db-port); writes go to the first healthy "
                 "node in this order")
      ->envname("IMBUS_DB_HOSTS");
  app.add_option("--db-user", o.db.user, "MariaDB user")->envname("IMBUS_DB_USER");
  app.add_option("--db-password", o.db.password, "MariaDB password")
      ->envname("IMBUS_DB_PASSWORD")
      ->capture_default_str();
  app.add_option("--db-name", o.db.database, "database (created if missing)")
      ->envname("IMBUS_DB_NAME");
  app.add_option("--db-timeout-s", o.db.timeout_s,
                 "how long one statement may wait for the server before the connection "
                 "counts as lost (and, with --db-hosts, the next node is tried)")
      ->envname("IMBUS_DB_TIMEOUT_S")
      ->check(CLI::Range(1, 3600));
  app.add_option("--db-wait-s", o.db_wait_s, "keep retrying the first DB connection this long")
      ->envname("IMBUS_DB_WAIT_S")
      ->check(CLI::Range(0, 3600));
  app.add_option("--pwhash-ops", o.service_options.pwhash_ops,
                 "Argon2id opslimit (below the default: for benchmarks/tests only)")
      ->envname("IMBUS_PWHASH_OPS");
  app.add_option("--pwhash-mem", o.service_options.pwhash_mem,
                 "Argon2id memlimit in bytes (min 8192)")
      ->envname("IMBUS_PWHASH_MEM");
  app.add_option("--hash-threads", o.hash_threads,
                 "threads computing password hashes, apart from the workers (which keep "
                 "heartbeating and serving meanwhile)")
      ->envname("IMBUS_HASH_THREADS")
      ->check(CLI::Range(1, 64));
  app.add_option("--hash-queue", o.hash_queue,
                 "password hashes that may wait for a hash thread; more: RATE_LIMITED")
      ->envname("IMBUS_HASH_QUEUE")
      ->check(CLI::Range(1, 100000));
  app.add_option("--token-ttl-s", o.service_options.token_ttl_s, "login token lifetime")
      ->envname("IMBUS_TOKEN_TTL_S")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 24 * 3600));
  app.add_option("--account-free-failures", o.service_options.login_free_failures,
                 "failed password checks at one account before it must wait")
      ->envname("IMBUS_ACCOUNT_FREE_FAILURES");
  app.add_option("--account-backoff-ms", o.service_options.login_backoff_ms,
                 "first wait for an account after its free failures; doubles per failure "
                 "(0: no per-account limit)")
      ->envname("IMBUS_ACCOUNT_BACKOFF_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{3600} * 1000));
  app.add_option("--account-backoff-max-ms", o.service_options.login_backoff_max_ms,
                 "longest wait for an account")
      ->envname("IMBUS_ACCOUNT_BACKOFF_MAX_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{24} * 3600 * 1000));
  app.add_option("--recall-window-s", o.service_options.recall_window_s,
                 "how long after sending a message its sender may recall it (MSG/RECALL)")
      ->envname("IMBUS_RECALL_WINDOW_S")
      ->check(CLI::Range(int64_t{0}, int64_t{365} * 24 * 3600));
  app.add_option("--edit-window-s", o.service_options.edit_window_s,
                 "how long after sending a message its sender may edit it (MSG/EDIT)")
      ->envname("IMBUS_EDIT_WINDOW_S")
      ->check(CLI::Range(int64_t{0}, int64_t{365} * 24 * 3600));
  app.add_flag("--immediate-friends", o.service_options.immediate_friends,
               "legacy: ADD_FRIEND befriends at once (no request to accept) and PRESENCE "
               "answers about anyone, not only friends")
      ->envname("IMBUS_IMMEDIATE_FRIENDS");
  // Offline push (the push service; docs/deploy.md "Offline push").
  app.add_option("--push-url", o.service_options.push_url,
                 "the push gateway: notifications for offline users are POSTed here by the push "
                 "service (empty: none are delivered; they wait in the outbox)")
      ->envname("IMBUS_PUSH_URL");
  app.add_option("--push-secret", o.service_options.push_secret,
                 "key of the X-Imbus-Signature header (HMAC-SHA256 of the body); empty: unsigned")
      ->envname("IMBUS_PUSH_SECRET")
      ->capture_default_str();
  app.add_option("--push-max-tries", o.service_options.push_max_tries,
                 "tries of one notification before it becomes a dead letter")
      ->envname("IMBUS_PUSH_MAX_TRIES")
      ->check(CLI::Range(1, 1000));
  app.add_option("--push-backoff-ms", o.service_options.push_backoff_ms,
                 "wait after a failed try; doubles with every further one")
      ->envname("IMBUS_PUSH_BACKOFF_MS")
      ->check(CLI::Range(int64_t{1}, int64_t{3600} * 1000));
  app.add_option("--push-backoff-max-ms", o.service_options.push_backoff_max_ms,
                 "longest wait between tries")
      ->envname("IMBUS_PUSH_BACKOFF_MAX_MS")
      ->check(CLI::Range(int64_t{1}, int64_t{24} * 3600 * 1000));
  app.add_option("--push-timeout-ms", o.service_options.push_timeout_ms,
                 "one POST to the gateway, connecting included")
      ->envname("IMBUS_PUSH_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{600} * 1000));
  app.add_option("--push-threads", o.service_options.push_threads,
                 "delivery threads (each: a DB connection, one POST at a time)")
      ->envname("IMBUS_PUSH_THREADS")
      ->check(CLI::Range(1, 64));
  app.add_option("--push-poll-ms", o.service_options.push_poll_ms,
                 "how often an idle delivery thread looks for due notifications")
      ->envname("IMBUS_PUSH_POLL_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{60} * 1000));
  app.add_option("--push-batch", o.service_options.push_batch,
                 "notifications a delivery thread claims at a time")
      ->envname("IMBUS_PUSH_BATCH")
      ->check(CLI::Range(1, 256));
  // Files (the file service; docs/deploy.md "File storage").
  app.add_option("--file-dir", o.service_options.file_dir,
                 "directory of uploaded files (shared by every actor serving file; made if "
                 "missing)")
      ->envname("IMBUS_FILE_DIR");
  app.add_option("--file-max-size", o.service_options.file_max_size,
                 "the largest file in bytes (UPLOAD_START of more: TOO_LARGE)")
      ->envname("IMBUS_FILE_MAX_SIZE")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 50));
  app.add_option("--file-quota", o.service_options.file_quota,
                 "bytes one user may store: their files plus open uploads (0: no quota)")
      ->envname("IMBUS_FILE_QUOTA");
  app.add_option("--file-chunk", o.service_options.file_chunk,
                 "the largest chunk of one UPLOAD_CHUNK or DOWNLOAD, in bytes (must fit a "
                 "frame: at most 61440)")
      ->envname("IMBUS_FILE_CHUNK")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{61440}));
  app.add_option("--file-upload-ttl-s", o.service_options.file_upload_ttl_s,
                 "open uploads with no chunk for this long are discarded")
      ->envname("IMBUS_FILE_UPLOAD_TTL_S")
      ->check(CLI::Range(int64_t{1}, int64_t{365} * 24 * 3600));
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT to serve Prometheus metrics on (GET /metrics; port 0: any free "
                 "port, logged); off when empty")
      ->envname("IMBUS_METRICS_LISTEN");
  imbus::bus::AddCurvePeerFlags(app, &curve);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("IMBUS_LOG_LEVEL");
  CLI11_PARSE(app, argc, argv);

  const imbus::actors::ServiceRegistry registry = imbus::actors::BuiltinServices();
  if (list_services) {
    for (const std::string& name : registry.Names()) std::cout << name << "\n";
    return 0;
  }
  if (!db_hosts.empty()) {
    try {
      o.db.hosts = imbus::actors::ParseDbHosts(db_hosts);
    } catch (const std::invalid_argument& e) {
      std::cerr << "imbus-actor: --db-hosts: " << e.what() << "\n";
      return 2;
    }
  }
  imbus::bus::InitProcessLogging("imbus-actor", log_level);
  {
    std::string error;
    if (!imbus::bus::ResolveCurveClientKeys(curve.server_key, curve.secret_file, &o.curve,
                                            &error)) {
      std::cerr << "imbus-actor: " << error << "\n";
      return 2;
    }
    if (o.curve.enabled()) spdlog::info("bus: CURVE on, our public key {}", o.curve.public_key);
  }
  if (services == "all") {
    o.services = registry.Names();
    services = fmt::format("{}", fmt::join(o.services, ","));
  } else {
    std::stringstream ss(services);
    for (std::string s; std::getline(ss, s, ',');) {
      if (!s.empty()) o.services.push_back(s);
    }
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  try {
    // Before the host: its workers take their metric handles as they start.
    std::unique_ptr<imbus::metrics::Server> metrics;
    if (!metrics_listen.empty()) {
      metrics = std::make_unique<imbus::metrics::Server>(metrics_listen);
      spdlog::info("metrics: serving {}", metrics->url());
    }
    ActorHost host(o, registry);
    host.Start();
    spdlog::info("imbus-actor: serving {} with {} threads via {}", services, o.threads, o.broker);
    host.Run(g_stop);
  } catch (const std::exception& e) {
    std::cerr << "imbus-actor: " << e.what() << "\n";
    return 2;
  }
  spdlog::info("imbus-actor: stopped");
  return 0;
}

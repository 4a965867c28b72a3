// imbus-broker: the ROUTER of the internal bus (see broker.h, docs/bus.md).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bus/curve.h"
#include "bus/logging.h"
#include "bus/stats_query.h"

#include "broker/broker.h"
#include "metrics/metrics.h"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void OnSignal(int) { g_stop.store(true); }

// Fills the CURVE options from the flags; false (after printing why) on a startup
// error. No secret and no allow list: CURVE stays off.
bool ConfigureCurve(const std::string& secret_file, const std::string& allow_file,
                    const std::string& allow_keys, const std::string& admin_keys,
                    imbus::broker::Options* options) {
  namespace bus = imbus::bus;
  std::string error;
  std::string secret;
  if (!bus::ResolveCurveSecret(secret_file, &secret, &error)) {
    std::fprintf(stderr, "imbus-broker: %s\n", error.c_str());
    return false;
  }
  std::vector<std::string> allow;
  if ((!allow_file.empty() && !bus::LoadCurveAllowFile(allow_file, &allow, &error)) ||
      !bus::ParseCurveKeyList(allow_keys, &allow, &error)) {
    std::fprintf(stderr, "imbus-broker: CURVE allow list: %s\n", error.c_str());
    return false;
  }
  std::vector<std::string> admin;
  if (!bus::ParseCurveKeyList(admin_keys, &admin, &error)) {
    std::fprintf(stderr, "imbus-broker: --curve-admin-keys: %s\n", error.c_str());
    return false;
  }
  // Admin keys may connect too.
  allow.insert(allow.end(), admin.begin(), admin.end());
  if (secret.empty()) {
    if (allow_file.empty() && allow.empty()) return true;  // CURVE off (any peer administers)
    std::fprintf(stderr,
                 "imbus-broker: a CURVE allow list needs the broker's secret key "
                 "(--curve-secret-file or IMBUS_CURVE_SECRET)\n");
    return false;
  }
  if (allow.empty()) {
    std::fprintf(stderr,
                 "imbus-broker: CURVE is on but no peer key is allowed "
                 "(--curve-allow FILE or --curve-allow-keys)\n");
    return false;
  }
  std::string public_key;
  if (!bus::CurvePublicFromSecret(secret, &public_key, &error)) {
    std::fprintf(stderr, "imbus-broker: %s\n", error.c_str());
    return false;
  }
  spdlog::info("broker: CURVE public key {} (peers need it as --curve-server-key)", public_key);
  // Its own key is always admitted: `imbus-broker --stats` with the same secret.
  // ... and may administer (imbus-ctl with the broker's secret).
  allow.push_back(public_key);
  admin.push_back(public_key);
  options->curve_admin = std::move(admin);
  options->curve_secret_key = secret;
  options->curve_allow = std::move(allow);
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  imbus::broker::Options options;
  std::string log_level = "info";
  std::string stats_endpoint;
  std::string metrics_listen;
  std::string curve_secret_file;
  std::string curve_allow_file;
  std::string curve_allow_keys;
  std::string curve_admin_keys;
  CLI::App app{"imbus-broker: routes requests from edges to actor workers"};
  app.add_option("--bind", options.bind, "ROUTER endpoint (tcp://host:port, port * or 0 = any)")
      ->envname("IMBUS_BROKER_BIND")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval")
      ->envname("IMBUS_HEARTBEAT_MS")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--liveness", options.liveness, "silent intervals before a peer is dead")
      ->envname("IMBUS_LIVENESS")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--queue-timeout-ms", options.queue_timeout_ms,
                 "how long a request waits for a worker of its service")
      ->envname("IMBUS_QUEUE_TIMEOUT_MS")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", options.request_timeout_ms,
                 "how long a worker may take to reply")
      ->envname("IMBUS_REQUEST_TIMEOUT_MS")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  app.add_option("--max-outstanding", options.max_outstanding,
                 "requests one worker may hold at once; more wait in the broker (0: no bound)")
      ->envname("IMBUS_MAX_OUTSTANDING")
      ->check(CLI::Range(0u, 10000000u))
      ->capture_default_str();
  app.add_option("--max-queue-wait-ms", options.max_queue_wait_ms,
                 "refuse new requests at once (RATE_LIMITED) while the oldest queued for a "
                 "busy service has waited this long")
      ->envname("IMBUS_MAX_QUEUE_WAIT_MS")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  auto& limits = options.user_limits;
  app.add_option("--user-rate", limits.requests.per_s,
                 "requests per second per logged-in user, over all their connections (0: off)")
      ->envname("IMBUS_USER_RATE")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--user-burst", limits.requests.burst, "requests a user may send at once")
      ->envname("IMBUS_USER_BURST")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--user-send-rate", limits.sends.per_s,
                 "MSG/SEND per second per user, over all their connections (0: off)")
      ->envname("IMBUS_USER_SEND_RATE")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--user-send-burst", limits.sends.burst, "MSG/SEND a user may send at once")
      ->envname("IMBUS_USER_SEND_BURST")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--curve-secret-file", curve_secret_file,
                 "file with the broker's CURVE secret key (Z85; or the key itself in "
                 "$IMBUS_CURVE_SECRET). Turns CURVE on; needs an allow list. Off by default")
      ->envname("IMBUS_CURVE_SECRET_FILE");
  app.add_option("--curve-allow", curve_allow_file,
                 "file of peer public keys (Z85) allowed to connect, one per line")
      ->envname("IMBUS_CURVE_ALLOW_FILE");
  app.add_option("--curve-allow-keys", curve_allow_keys,
                 "allowed peer public keys (Z85), separated by commas or spaces")
      ->envname("IMBUS_CURVE_ALLOW");
  app.add_option("--curve-admin-keys", curve_admin_keys,
                 "public keys (Z85, commas or spaces) that may administer the broker with "
                 "imbus-ctl (kick, broadcast, drain); allowed to connect too. The broker's own "
                 "key always may. With CURVE off any peer may")
      ->envname("IMBUS_CURVE_ADMIN_KEYS");
  app.add_option("--peer", options.ha_peer,
                 "run as one of a primary/backup pair: the other broker's state endpoint "
                 "(its --state-bind, e.g. tcp://b:5556). Edges and actors then get both "
                 "brokers: --broker tcp://a:5555,tcp://b:5555")
      ->envname("IMBUS_BROKER_PEER");
  app.add_option("--state-bind", options.ha_bind,
                 "with --peer: where this broker publishes its state to the other")
      ->envname("IMBUS_BROKER_STATE_BIND");
  app.add_flag("--backup", options.ha_backup,
               "with --peer: this one is the backup (default: the primary). The backup "
               "serves only after the primary went silent and a client came to it")
      ->envname("IMBUS_BROKER_BACKUP");
  app.add_option("--peer-timeout-ms", options.ha_peer_timeout_ms,
                 "with --peer: silence after which the other broker counts as gone "
                 "(0: 2 x --heartbeat-ms)")
      ->envname("IMBUS_BROKER_PEER_TIMEOUT_MS")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->envname("IMBUS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT to serve Prometheus metrics on (GET /metrics; port 0: any free "
                 "port, logged); off when empty")
      ->envname("IMBUS_METRICS_LISTEN");
  app.add_option("--stats", stats_endpoint,
                 "print the STATS of the broker at this endpoint and exit (no serving)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; a bad flag is a startup error: exit 2 with CLI11's message.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (!stats_endpoint.empty()) {
    // Control-tool mode: exit 0 with the table, 1 when the broker does not answer.
    // With CURVE on, it connects with the broker's own key pair, which the broker
    // always admits (whoever holds its secret key is the operator).
    imbus::bus::CurveClientKeys curve;
    std::string error;
    if (!imbus::bus::ResolveCurveSecret(curve_secret_file, &curve.secret_key, &error) ||
        (!curve.secret_key.empty() &&
         !imbus::bus::CurvePublicFromSecret(curve.secret_key, &curve.public_key, &error))) {
      std::fprintf(stderr, "imbus-broker: %s\n", error.c_str());
      return 2;
    }
    curve.server_public_key = curve.public_key;
    imbus::codec::StatsMeta stats;
    if (!imbus::bus::QueryStats(stats_endpoint, std::chrono::seconds(3), &stats, &error, &curve)) {
      std::fprintf(stderr, "imbus-broker: %s\n", error.c_str());
      return 1;
    }
    std::fputs(imbus::bus::FormatStats(stats).c_str(), stdout);
    return 0;
  }

  if (options.ha_peer.empty() != options.ha_bind.empty()) {
    std::fprintf(stderr, "imbus-broker: --peer and --state-bind go together (a broker pair)\n");
    return 2;
  }
  if (options.ha_backup && options.ha_peer.empty()) {
    std::fprintf(stderr, "imbus-broker: --backup needs --peer and --state-bind\n");
    return 2;
  }
  imbus::bus::InitProcessLogging("imbus-broker", log_level);
  if (!ConfigureCurve(curve_secret_file, curve_allow_file, curve_allow_keys, curve_admin_keys,
                      &options)) {
    return 2;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  std::unique_ptr<imbus::metrics::Server> metrics;
  if (!metrics_listen.empty()) {
    try {
      metrics = std::make_unique<imbus::metrics::Server>(metrics_listen);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "imbus-broker: %s\n", e.what());
      return 2;
    }
    spdlog::info("metrics: serving {}", metrics->url());
  }
  try {
    zmq::context_t ctx(1);
    imbus::broker::Broker broker(ctx, options);
    broker.Run(g_stop);
    const auto& c = broker.counters();
    spdlog::info(
        "broker: stopping ({}); requests {} replies {} unavailable {} late {} send "
        "failures {} rate limited {} (MSG/SEND {}) refused peers {} READYs {} edge / {} "
        "worker, departed sessions {}, told offline {}, turned away while passive {}",
        broker.ha_state(), c.requests, c.replies, c.unavailable, c.late_replies, c.send_failures,
        c.rate_limited, c.rate_limited_send, broker.refused_peers(), c.edge_readies,
        c.worker_readies, c.departed, c.forced_offline, c.not_active);
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "imbus-broker: cannot serve on %s: %s\n", options.bind.c_str(), e.what());
    return 2;
  }
  return 0;
}

// imbus-edge: terminates client TCP connections and forwards requests to the broker.
// See edge/README.md and docs/bus.md.
#include <pthread.h>
#include <signal.h>

#include <ctime>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "bus/curve_flags.h"
#include "bus/logging.h"

#include "edge/edge_metrics.h"
#include "edge/edge_server.h"
#include "edge/options.h"
#include "metrics/metrics.h"

namespace {

// The refusals of the rate limits since the last line, when there were any: the
// edge's own counters (the broker's per-user ones are in its STATS).
void LogRefusals(const imbus::edge::EdgeCounters& now, imbus::edge::EdgeCounters* last) {
  if (now.rate_limited == last->rate_limited && now.rate_limited_send == last->rate_limited_send &&
      now.login_backoff == last->login_backoff && now.refused_ip_cap == last->refused_ip_cap &&
      now.busy == last->busy) {
    return;
  }
  spdlog::info(
      "rate limits: refused so far: {} requests and {} MSG/SEND over the per-connection rate, "
      "{} logins in backoff, {} connections over the per-address cap, {} requests for a busy "
      "service",
      now.rate_limited, now.rate_limited_send, now.login_backoff, now.refused_ip_cap, now.busy);
  *last = now;
}

}  // namespace

int main(int argc, char** argv) {
  imbus::edge::EdgeOptions o;
  std::string listen = "0.0.0.0:7000";
  std::string advertise;
  std::string tls_listen;
  std::string ws_listen;
  std::string wss_listen;
  std::string log_level = "info";
  int stats_log_s = 60;
  std::string metrics_listen;
  imbus::bus::CurvePeerFlags curve;

  CLI::App app{"imbus-edge: client TCP front end of imbus (epoll, one loop per thread)"};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", listen, "HOST:PORT to accept clients on (port 0: any free port)")
      ->envname("IMBUS_EDGE_LISTEN");
  app.add_option("--broker", o.broker,
                 "broker ROUTER endpoint; a broker pair as two, comma-separated "
                 "(tcp://a:5555,tcp://b:5555)")
      ->envname("IMBUS_BROKER");
  app.add_option("--threads", o.threads, "event loop threads (each with its own socket)")
      ->envname("IMBUS_EDGE_THREADS");
  app.add_option("--name", o.name, "edge name for the broker (default edge-<hostname>-<port>)")
      ->envname("IMBUS_EDGE_NAME");
  app.add_option("--advertise", advertise,
                 "HOST:PORT clients are told to use (SYS/ROUTE); default: the listen address "
                 "with 0.0.0.0 as 127.0.0.1")
      ->envname("IMBUS_EDGE_ADVERTISE");
  app.add_option("--tls-listen", tls_listen,
                 "HOST:PORT to accept TLS clients on, beside --listen (port 0: any free "
                 "port); needs --tls-cert and --tls-key")
      ->envname("IMBUS_EDGE_TLS_LISTEN");
  app.add_option("--tls-cert", o.tls_cert_file,
                 "PEM certificate chain for --tls-listen and --wss-listen")
      ->envname("IMBUS_EDGE_TLS_CERT");
  app.add_option("--tls-key", o.tls_key_file, "PEM private key of --tls-cert")
      ->envname("IMBUS_EDGE_TLS_KEY");
  app.add_option("--ws-listen", ws_listen,
                 "HOST:PORT for browsers: WebSocket at ws://HOST:PORT/ws (one frame per binary "
                 "message) and the web app (--web-root) at http://HOST:PORT/")
      ->envname("IMBUS_EDGE_WS_LISTEN");
  app.add_option("--wss-listen", wss_listen,
                 "HOST:PORT for browsers over TLS (wss://, https://); needs --tls-cert and "
                 "--tls-key")
      ->envname("IMBUS_EDGE_WSS_LISTEN");
  app.add_option("--ws-origin", o.ws_origins,
                 "Origin allowed to open a WebSocket (repeat, or comma-separated; * for any); "
                 "default: only the pages this edge serves")
      ->envname("IMBUS_EDGE_WS_ORIGIN")
      ->delimiter(',');
  app.add_option("--web-root", o.web_root,
                 "directory of the web app served on the WebSocket ports (e.g. web/ of the "
                 "source tree, with its node_modules/ installed)")
      ->envname("IMBUS_EDGE_WEB_ROOT");
  app.add_option("--idle-timeout-s", o.idle_timeout_s, "close connections silent this long")
      ->envname("IMBUS_EDGE_IDLE_TIMEOUT_S");
  app.add_option("--max-frame", o.max_frame, "largest frame accepted, header included")
      ->envname("IMBUS_EDGE_MAX_FRAME");
  app.add_option("--max-output-bytes", o.max_output_bytes,
                 "pending output per connection past which it is closed as a slow reader")
      ->envname("IMBUS_EDGE_MAX_OUTPUT_BYTES");
  app.add_option("--request-timeout-ms", o.request_timeout_ms,
                 "answer UNAVAILABLE when the broker has not replied in this time")
      ->envname("IMBUS_EDGE_REQUEST_TIMEOUT_MS");
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "bus heartbeat interval")
      ->envname("IMBUS_HEARTBEAT_MS");
  app.add_option("--conn-rate", o.conn_requests.per_s,
                 "requests per second per connection (0: no limit)")
      ->envname("IMBUS_EDGE_CONN_RATE")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--conn-burst", o.conn_requests.burst, "requests a connection may send at once")
      ->envname("IMBUS_EDGE_CONN_BURST")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--conn-send-rate", o.conn_sends.per_s,
                 "MSG/SEND per second per connection (0: no limit)")
      ->envname("IMBUS_EDGE_CONN_SEND_RATE")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--conn-send-burst", o.conn_sends.burst, "MSG/SEND a connection may send at once")
      ->envname("IMBUS_EDGE_CONN_SEND_BURST")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--file-rate", o.file_bytes.per_s,
                 "file bytes per second through this edge, uploads and downloads together, "
                 "all connections (0: no limit)")
      ->envname("IMBUS_EDGE_FILE_RATE")
      ->check(CLI::Range(0.0, 1e12));
  app.add_option("--file-burst", o.file_bytes.burst,
                 "file bytes this edge lets through at once (at least one chunk)")
      ->envname("IMBUS_EDGE_FILE_BURST")
      ->check(CLI::Range(0.0, 1e12));
  app.add_option("--max-conns-per-ip", o.max_conns_per_ip,
                 "open connections from one client address (0: no cap)")
      ->envname("IMBUS_EDGE_MAX_CONNS_PER_IP");
  app.add_option("--login-free-failures", o.login_backoff.free_failures,
                 "failed password or token checks (LOGIN, RESUME, DELETE_ACCOUNT) from one address "
                 "before it must wait")
      ->envname("IMBUS_EDGE_LOGIN_FREE_FAILURES");
  app.add_option("--login-backoff-ms", o.login_backoff.base_ms,
                 "first wait after the free failures; doubles per failure (0: no backoff)")
      ->envname("IMBUS_EDGE_LOGIN_BACKOFF_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}));
  app.add_option("--login-backoff-max-ms", o.login_backoff.max_ms, "longest login wait")
      ->envname("IMBUS_EDGE_LOGIN_BACKOFF_MAX_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}));
  app.add_option("--stats-log-s", stats_log_s,
                 "log the rate-limit refusal counters this often when they changed (0: never)")
      ->envname("IMBUS_EDGE_STATS_LOG_S")
      ->check(CLI::Range(0, 86400));
  app.add_option("--metrics-listen", metrics_listen,
                 "HOST:PORT to serve Prometheus metrics on (GET /metrics; port 0: any free "
                 "port, logged); off when empty")
      ->envname("IMBUS_METRICS_LISTEN");
  imbus::bus::AddCurvePeerFlags(app, &curve);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("IMBUS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; a bad flag is a startup error
  }

  imbus::bus::InitProcessLogging("imbus-edge", log_level);
  std::string error;
  if (!imbus::bus::ResolveCurveClientKeys(curve.server_key, curve.secret_file, &o.curve, &error)) {
    std::fprintf(stderr, "imbus-edge: %s\n", error.c_str());
    return 2;
  }
  if (o.curve.enabled()) spdlog::info("bus: CURVE on, our public key {}", o.curve.public_key);
  if (!imbus::edge::ParseHostPort(listen, &o.listen_host, &o.listen_port, &error)) {
    std::fprintf(stderr, "imbus-edge: --listen: %s\n", error.c_str());
    return 2;
  }
  if (!advertise.empty() &&
      !imbus::edge::ParseHostPort(advertise, &o.advertise_host, &o.advertise_port, &error)) {
    std::fprintf(stderr, "imbus-edge: --advertise: %s\n", error.c_str());
    return 2;
  }

  if (!ws_listen.empty() &&
      !imbus::edge::ParseHostPort(ws_listen, &o.ws_listen_host, &o.ws_listen_port, &error)) {
    std::fprintf(stderr, "imbus-edge: --ws-listen: %s\n", error.c_str());
    return 2;
  }
  if (!wss_listen.empty() &&
      !imbus::edge::ParseHostPort(wss_listen, &o.wss_listen_host, &o.wss_listen_port, &error)) {
    std::fprintf(stderr, "imbus-edge: --wss-listen: %s\n", error.c_str());
    return 2;
  }
  if (!tls_listen.empty() &&
      !imbus::edge::ParseHostPort(tls_listen, &o.tls_listen_host, &o.tls_listen_port, &error)) {
    std::fprintf(stderr, "imbus-edge: --tls-listen: %s\n", error.c_str());
    return 2;
  }

  // Block the stop signals in every thread (the loops and ZeroMQ's inherit the mask);
  // this thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    imbus::edge::EdgeServer server(o);
    // Before Start (the loops take their handles then); destroyed before the server.
    std::unique_ptr<imbus::metrics::Server> metrics;
    if (!metrics_listen.empty()) {
      metrics = std::make_unique<imbus::metrics::Server>(metrics_listen);
      imbus::edge::ExportEdgeCounters([&server] { return server.Stats(); });
      spdlog::info("metrics: serving {}", metrics->url());
    }
    server.Start();
    int sig = 0;
    if (stats_log_s == 0) {
      sigwait(&stop_signals, &sig);
    } else {
      imbus::edge::EdgeCounters last;
      for (;;) {
        const timespec interval{stats_log_s, 0};
        sig = sigtimedwait(&stop_signals, nullptr, &interval);
        if (sig == SIGINT || sig == SIGTERM) break;
        LogRefusals(server.Stats(), &last);
      }
    }
    spdlog::info("received {}; stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.Stop();
    imbus::edge::EdgeCounters none;
    LogRefusals(server.Stats(), &none);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imbus-edge: %s\n", e.what());
    return 2;
  }
  spdlog::info("stopped");
  return 0;
}

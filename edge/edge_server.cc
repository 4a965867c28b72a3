#include "edge/edge_server.h"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "codec/frame.h"
#include "edge/edge_loop.h"

namespace imbus::edge {

namespace {
std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}
}  // namespace

EdgeServer::EdgeServer(EdgeOptions options)
    : options_(std::move(options)),
      ctx_(1),
      ip_limits_(options_.max_conns_per_ip, options_.login_backoff),
      file_budget_(options_.file_bytes) {
  if (options_.threads < 1 || options_.threads > 256) {
    throw std::runtime_error("--threads must be 1..256");
  }
  if (options_.max_frame < codec::kHeaderSize + 1 || options_.max_frame > (4u << 20)) {
    throw std::runtime_error("--max-frame must be 17..4194304");
  }
  if (options_.idle_timeout_s < 1) throw std::runtime_error("--idle-timeout-s must be >= 1");
  if (options_.request_timeout_ms < 1) {
    throw std::runtime_error("--request-timeout-ms must be >= 1");
  }
  if (options_.heartbeat_ms < 10) throw std::runtime_error("--heartbeat-ms must be >= 10");
  if (options_.conn_requests.per_s < 0 || options_.conn_sends.per_s < 0 ||
      options_.login_backoff.base_ms < 0 || options_.login_backoff.max_ms < 0) {
    throw std::runtime_error("rate limits must be >= 0 (0: off)");
  }
  if (options_.max_output_bytes < options_.max_frame) {
    throw std::runtime_error("--max-output-bytes must be at least --max-frame");
  }
  const bool tls = !options_.tls_listen_host.empty();
  const bool wss = !options_.wss_listen_host.empty();
  if ((tls || wss) && (options_.tls_cert_file.empty() || options_.tls_key_file.empty())) {
    throw std::runtime_error(std::string(tls ? "--tls-listen" : "--wss-listen") +
                             " needs --tls-cert and --tls-key");
  }
  if (!tls && !wss && (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty())) {
    throw std::runtime_error("--tls-cert/--tls-key given without --tls-listen or --wss-listen");
  }
  const bool ws = !options_.ws_listen_host.empty();
  if (!ws && !wss && (!options_.web_root.empty() || !options_.ws_origins.empty())) {
    throw std::runtime_error("--web-root/--ws-origin given without --ws-listen or --wss-listen");
  }
  if (!options_.web_root.empty()) {
    web_ = std::make_unique<StaticFiles>(StaticFiles::Load(options_.web_root));
  }
  if (tls || wss) {
    tls_ = std::make_unique<TlsContext>(
        TlsContext::Load(options_.tls_cert_file, options_.tls_key_file));
  }
  // The first socket takes the port (maybe a free one); the others join it.
  listeners_.push_back(Listener::Bind(options_.listen_host, options_.listen_port));
  options_.listen_port = listeners_.front().port();
  for (int i = 1; i < options_.threads; ++i) {
    listeners_.push_back(Listener::Bind(options_.listen_host, options_.listen_port));
  }
  if (tls) {
    tls_listeners_.push_back(Listener::Bind(options_.tls_listen_host, options_.tls_listen_port));
    options_.tls_listen_port = tls_listeners_.front().port();
    for (int i = 1; i < options_.threads; ++i) {
      tls_listeners_.push_back(Listener::Bind(options_.tls_listen_host, options_.tls_listen_port));
    }
  }
  if (ws) {
    ws_listeners_.push_back(Listener::Bind(options_.ws_listen_host, options_.ws_listen_port));
    options_.ws_listen_port = ws_listeners_.front().port();
    for (int i = 1; i < options_.threads; ++i) {
      ws_listeners_.push_back(Listener::Bind(options_.ws_listen_host, options_.ws_listen_port));
    }
  }
  if (wss) {
    wss_listeners_.push_back(Listener::Bind(options_.wss_listen_host, options_.wss_listen_port));
    options_.wss_listen_port = wss_listeners_.front().port();
    for (int i = 1; i < options_.threads; ++i) {
      wss_listeners_.push_back(Listener::Bind(options_.wss_listen_host, options_.wss_listen_port));
    }
  }
  if (options_.advertise_host.empty()) {
    options_.advertise_host =
        options_.listen_host == "0.0.0.0" ? "127.0.0.1" : options_.listen_host;
  }
  if (options_.advertise_port == 0) options_.advertise_port = options_.listen_port;
  if (options_.name.empty()) {
    options_.name = "edge-" + HostName() + "-" + std::to_string(options_.listen_port);
  }
  for (int i = 0; i < options_.threads; ++i) stats_.push_back(std::make_unique<EdgeStats>());
}

EdgeServer::~EdgeServer() { Stop(); }

void EdgeServer::Start() {
  spdlog::info("{}: {} thread(s), advertised to clients as {}:{}, broker {}", options_.name,
               options_.threads, options_.advertise_host, options_.advertise_port, options_.broker);
  // Scripts and tests read the port from this line: keep HOST:PORT at its end.
  spdlog::info("{}: listening on {}:{}", options_.name, options_.listen_host, options_.listen_port);
  if (!tls_listeners_.empty()) {
    // Not "listening on": tests and scripts take the plain port from that line.
    spdlog::info("{}: TLS listener on {}:{}", options_.name, options_.tls_listen_host,
                 options_.tls_listen_port);
  }
  const std::string app =
      web_ ? " (web app: " + std::to_string(web_->size()) + " files from " + options_.web_root + ")"
           : "";
  if (!ws_listeners_.empty()) {
    spdlog::info("{}: WebSocket listener on {}:{}{}", options_.name, options_.ws_listen_host,
                 options_.ws_listen_port, app);
    spdlog::info("{}: web app at http://{}:{}/", options_.name,
                 options_.ws_listen_host == "0.0.0.0" ? "127.0.0.1" : options_.ws_listen_host,
                 options_.ws_listen_port);
  }
  if (!wss_listeners_.empty()) {
    spdlog::info("{}: wss:// (WebSocket over TLS) on {}:{}{}", options_.name,
                 options_.wss_listen_host, options_.wss_listen_port, app);
  }
  for (int i = 0; i < options_.threads; ++i) {
    std::optional<Listener> tls_listener;
    std::optional<Listener> ws_listener;
    std::optional<Listener> wss_listener;
    if (!tls_listeners_.empty()) tls_listener.emplace(std::move(tls_listeners_[i]));
    if (!ws_listeners_.empty()) ws_listener.emplace(std::move(ws_listeners_[i]));
    if (!wss_listeners_.empty()) wss_listener.emplace(std::move(wss_listeners_[i]));
    threads_.emplace_back(
        [this, i, listener = std::move(listeners_[i]), tls_listener = std::move(tls_listener),
         ws_listener = std::move(ws_listener), wss_listener = std::move(wss_listener)]() mutable {
          try {
            EdgeLoop loop(i, options_, std::move(listener), ctx_, stats_[i].get(), &ip_limits_,
                          &file_budget_);
            if (tls_listener) loop.AddTlsListener(std::move(*tls_listener), tls_.get());
            if (ws_listener || wss_listener) {
              loop.AddWsListeners(std::move(ws_listener), std::move(wss_listener), tls_.get(),
                                  web_.get());
            }
            loop.Run(stop_);
          } catch (const std::exception& e) {
            spdlog::critical("{}/{}: event loop failed: {}", options_.name, i, e.what());
          }
        });
  }
  listeners_.clear();
  tls_listeners_.clear();
  ws_listeners_.clear();
  wss_listeners_.clear();
}

void EdgeServer::Stop() {
  stop_.store(true);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

EdgeCounters EdgeServer::Stats() const {
  EdgeCounters sum;
  for (const auto& s : stats_) {
    sum.connections += s->connections.load();
    sum.accepted += s->accepted.load();
    sum.closed += s->closed.load();
    sum.closed_idle += s->closed_idle.load();
    sum.closed_slow_reader += s->closed_slow_reader.load();
    sum.closed_broken += s->closed_broken.load();
    sum.kicked += s->kicked.load();
    sum.requests += s->requests.load();
    sum.forwarded += s->forwarded.load();
    sum.timeouts += s->timeouts.load();
    sum.pushes += s->pushes.load();
    sum.peak_output = std::max<uint64_t>(sum.peak_output, s->peak_output.load());
    sum.rate_limited += s->rate_limited.load();
    sum.rate_limited_send += s->rate_limited_send.load();
    sum.login_backoff += s->login_backoff.load();
    sum.refused_ip_cap += s->refused_ip_cap.load();
    sum.busy += s->busy.load();
    sum.frames_out += s->frames_out.load();
    sum.bytes_in += s->bytes_in.load();
    sum.bytes_out += s->bytes_out.load();
    for (int t = 0; t < 4; ++t) {
      sum.open_by_transport[t] += s->open_by_transport[t].load();
      sum.accepted_by_transport[t] += s->accepted_by_transport[t].load();
    }
  }
  return sum;
}

}  // namespace imbus::edge

#include "bench/imbus_bench/fleet.h"

#include <algorithm>

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include "codec/commands.h"

namespace imbus::bench {

namespace {
using codec::ToWire;
constexpr int64_t kSecondNs = 1'000'000'000;
const uint16_t kAuth = ToWire(codec::Service::kAuth);
}  // namespace

bool ParseServer(const std::string& text, sockaddr_in* out, std::string* error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    *error = "'" + text + "' is not HOST:PORT";
    return false;
  }
  std::string host = text.substr(0, colon);
  if (host == "localhost" || host.empty()) host = "127.0.0.1";
  unsigned port = 0;
  const char* last = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data() + colon + 1, last, port);
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  if (ec != std::errc() || ptr != last || port == 0 || port > 65535 ||
      ::inet_pton(AF_INET, host.c_str(), &out->sin_addr) != 1) {
    *error = "'" + text + "': expected an IPv4 HOST:PORT";
    return false;
  }
  out->sin_port = htons(static_cast<uint16_t>(port));
  return true;
}

Fleet::Fleet(EventLoop* loop, FleetOptions options) : loop_(loop), options_(std::move(options)) {}

sockaddr_in Fleet::SourceFor(size_t i) const {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  // Only spread when the server is on loopback: elsewhere 127.x cannot reach it.
  const uint32_t server = ntohl(options_.server.sin_addr.s_addr);
  if ((server >> 24) != 127 || options_.source_ips <= 0) return a;
  const uint32_t host = 2 + static_cast<uint32_t>(i % static_cast<size_t>(options_.source_ips));
  a.sin_addr.s_addr = htonl((127u << 24) | host);
  return a;
}

std::unique_ptr<BenchConn> Fleet::NewConn(size_t index, std::string* error) {
  auto c = std::make_unique<BenchConn>(loop_, index);
  if (options_.ws) c->UseWebSocket();
  if (!c->Start(options_.server, SourceFor(index), error, options_.tls)) return nullptr;
  return c;
}

size_t Fleet::open_count() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->state() == BenchConn::State::kOpen ? 1 : 0;
  return n;
}

void Fleet::RunPhase(const char* name, size_t target, const size_t* done, int timeout_s) {
  Progress progress(name);
  uint64_t last_connected = 0, last_logged_in = 0;
  loop_->RunUntil([&] { return *done >= target; }, NowNs() + int64_t{timeout_s} * kSecondNs,
                  [&] {
                    Tick();
                    progress.Maybe([&] {
                      char line[240];
                      std::snprintf(
                          line, sizeof(line),
                          "connected %llu (+%llu/s)  logged in %llu (+%llu/s)  failed %llu",
                          static_cast<unsigned long long>(stats_.connected),
                          static_cast<unsigned long long>(stats_.connected - last_connected),
                          static_cast<unsigned long long>(stats_.logged_in),
                          static_cast<unsigned long long>(stats_.logged_in - last_logged_in),
                          static_cast<unsigned long long>(stats_.failed));
                      last_connected = stats_.connected;
                      last_logged_in = stats_.logged_in;
                      return std::string(line);
                    });
                  });
}

bool Fleet::ConnectAll(int timeout_s) {
  stats_.first_start_ns = NowNs();
  conns_.reserve(options_.count);
  phase_.assign(options_.count, kNotStarted);
  StartNextConnect();
  RunPhase("connect", options_.count, &connect_done_, timeout_s);
  stats_.all_connected_ns = NowNs();
  return stats_.connected == options_.count;
}

bool Fleet::LoginAll(int timeout_s) {
  stats_.login_start_ns = NowNs();
  next_to_start_ = 0;
  in_flight_ = 0;
  StartNextLogin();
  RunPhase("login", stats_.connected, &login_done_, timeout_s);
  stats_.all_logged_in_ns = NowNs();
  return stats_.logged_in == options_.count;
}

void Fleet::StartNextConnect() {
  while (in_flight_ < options_.parallel && next_to_start_ < options_.count) {
    const size_t i = next_to_start_++;
    ++in_flight_;
    phase_[i] = kConnecting;
    conns_.push_back(std::make_unique<BenchConn>(loop_, i));
    BenchConn& c = *conns_.back();
    c.set_on_open([this, i] { OnOpen(i); });
    c.set_on_close([this, i](const std::string& why) {
      stats_.last_error = why;
      if (phase_[i] == kConnecting) {
        phase_[i] = kFailed;
        ++stats_.connect_failed;
        ++stats_.failed;
        ++connect_done_;
        --in_flight_;
        StartNextConnect();
      } else if (phase_[i] == kSettingUp) {
        SetupDone(i, false, why);
      } else if (phase_[i] != kFailed) {
        ++stats_.closed_later;
      }
    });
    std::string error;
    if (options_.ws) c.UseWebSocket();
    if (!c.Start(options_.server, SourceFor(i), &error, options_.tls)) {
      phase_[i] = kFailed;
      stats_.last_error = error;
      ++stats_.connect_failed;
      ++stats_.failed;
      ++connect_done_;
      --in_flight_;
    }
  }
}

void Fleet::OnOpen(size_t i) {
  BenchConn& c = *conns_[i];
  const int64_t now = NowNs();
  stats_.connect_ns.Record(now - c.connect_started_ns());
  ++stats_.connected;
  phase_[i] = kOpen;
  ++connect_done_;
  --in_flight_;
  // Kept alive from now on: the login phase may take longer than the idle timeout.
  ping_due_.emplace(now + int64_t{options_.ping_interval_s} * kSecondNs, i);
  StartNextConnect();
}

void Fleet::StartNextLogin() {
  while (in_flight_ < options_.parallel && next_to_start_ < conns_.size()) {
    const size_t i = next_to_start_++;
    if (phase_[i] != kOpen) continue;
    if (conns_[i]->state() != BenchConn::State::kOpen) {  // closed while waiting
      phase_[i] = kFailed;
      ++stats_.failed;
      ++login_done_;
      continue;
    }
    ++in_flight_;
    phase_[i] = kSettingUp;
    if (options_.reuse_users) {
      Login(i, true);
    } else {
      Register(i);
    }
  }
}

void Fleet::Register(size_t i) {
  codec::MapWriter w(2);
  w.Key("name").Str(Name(i)).Key("password").Str(options_.password);
  const int64_t start = NowNs();
  conns_[i]->Request(kAuth, codec::auth::kRegister, w.Finish(),
                     [this, i, start](int code, const codec::Body& body) {
                       if (code == kConnLost) return;  // on_close reports it
                       if (code == static_cast<int>(codec::Code::kRateLimited)) {
                         RetryLater(i, true, body);  // the server is busy hashing: wait
                         return;
                       }
                       stats_.register_ns.Record(NowNs() - start);
                       // CONFLICT: the user exists (an earlier run); LOGIN decides.
                       if (code != 0 && code != static_cast<int>(codec::Code::kConflict)) {
                         SetupDone(i, false, std::string("REGISTER: ") + codec::CodeName(code));
                         return;
                       }
                       if (code == 0) ++stats_.registered;
                       Login(i, false);
                     });
}

void Fleet::Login(size_t i, bool register_on_failure) {
  codec::MapWriter w(2);
  w.Key("name").Str(Name(i)).Key("password").Str(options_.password);
  const int64_t start = NowNs();
  conns_[i]->Request(
      kAuth, codec::auth::kLogin, w.Finish(),
      [this, i, start, register_on_failure](int code, const codec::Body& body) {
        if (code == kConnLost) return;
        if (code == static_cast<int>(codec::Code::kRateLimited)) {
          RetryLater(i, false, body);
          return;
        }
        if (code == static_cast<int>(codec::Code::kUnauthenticated) && register_on_failure) {
          Register(i);
          return;
        }
        if (code != 0) {
          SetupDone(i, false, std::string("LOGIN: ") + codec::CodeName(code));
          return;
        }
        stats_.login_ns.Record(NowNs() - start);
        conns_[i]->uid = body.GetUint("uid").value_or(0);
        SetupDone(i, true, "");
      });
}

void Fleet::SetupDone(size_t i, bool ok, const std::string& why) {
  if (phase_[i] != kSettingUp) return;
  phase_[i] = ok ? kLoggedIn : kFailed;
  --in_flight_;
  ++login_done_;
  if (ok) {
    ++stats_.logged_in;
  } else {
    ++stats_.failed;
    stats_.last_error = why;
    conns_[i]->Close();
  }
  StartNextLogin();
}

void Fleet::RetryLater(size_t i, bool register_user, const codec::Body& body) {
  ++stats_.busy_retries;
  const int64_t retry_ms =
      std::clamp<int64_t>(static_cast<int64_t>(body.GetUint("retry_ms").value_or(100)), 10, 10000);
  retry_due_.push(Retry{NowNs() + retry_ms * 1'000'000, i, register_user});
}

void Fleet::Tick() {
  const int64_t now = NowNs();
  while (!retry_due_.empty() && retry_due_.top().at <= now) {
    const Retry r = retry_due_.top();
    retry_due_.pop();
    if (phase_[r.conn] != kSettingUp) continue;
    if (r.register_user) {
      Register(r.conn);
    } else {
      Login(r.conn, options_.reuse_users);
    }
  }
  const int64_t interval = int64_t{options_.ping_interval_s} * kSecondNs;
  while (!ping_due_.empty() && ping_due_.top().first <= now) {
    const size_t i = ping_due_.top().second;
    ping_due_.pop();
    BenchConn& c = *conns_[i];
    if (c.state() != BenchConn::State::kOpen) continue;
    // Anything the scenario sent keeps the connection alive as well as a PING.
    if (c.last_send_ns() + interval > now + interval / 10) {
      ping_due_.emplace(c.last_send_ns() + interval, i);
      continue;
    }
    ++stats_.pings;
    const int64_t start = now;
    c.Request(ToWire(codec::Service::kSys), codec::sys::kPing, codec::EmptyBody(),
              [this, start](int code, const codec::Body&) {
                if (code != 0) {
                  ++stats_.ping_failures;
                  return;
                }
                stats_.ping_ns.Record(NowNs() - start);
              });
    ping_due_.emplace(now + interval, i);
  }
}

}  // namespace imbus::bench

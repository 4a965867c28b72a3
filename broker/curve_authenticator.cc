#include "broker/curve_authenticator.h"

#include <cstring>

#include <spdlog/spdlog.h>

#include "bus/curve.h"

namespace imbus::broker {

namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr size_t kZapRequestFrames = 7;  // version .. mechanism, then one credential

std::string Z85(const std::string& raw) {
  if (raw.size() != 32) return "(not a 32-byte key)";
  char out[bus::kZ85KeyLength + 1] = {};
  zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  return out;
}

}  // namespace

CurveAuthenticator::CurveAuthenticator(zmq::context_t& ctx, const std::vector<std::string>& allowed)
    : zap_(ctx, zmq::socket_type::rep), monitor_(ctx, zmq::socket_type::pair) {
  for (const std::string& key : allowed) {
    std::string raw(32, '\0');
    if (zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), key.c_str()) != nullptr) {
      allowed_.insert(std::move(raw));
    }
  }
  zap_.set(zmq::sockopt::linger, 0);
  zap_.bind(kZapEndpoint);
  monitor_.set(zmq::sockopt::linger, 0);
}

void CurveAuthenticator::Watch(zmq::socket_t& router) {
  const std::string endpoint =
      "inproc://imbus-broker-monitor/" + std::to_string(reinterpret_cast<uintptr_t>(this));
  // Auth failures are ZAP's own refusals, counted in HandleZap; these are the ones
  // ZAP never sees.
  const int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  if (zmq_socket_monitor(router.handle(), endpoint.c_str(), events) != 0) {
    throw zmq::error_t();
  }
  monitor_.connect(endpoint);
}

void CurveAuthenticator::HandleZap() {
  for (;;) {
    std::vector<zmq::message_t> frames;
    zmq::message_t part;
    if (!zap_.recv(part, zmq::recv_flags::dontwait)) return;
    frames.push_back(std::move(part));
    while (frames.back().more()) {
      zmq::message_t next;
      if (!zap_.recv(next, zmq::recv_flags::none)) break;
      frames.push_back(std::move(next));
    }
    // A REP must answer before it can read again, even a request it cannot parse.
    std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
    std::string status = "400";
    std::string text = "not allowed";
    std::string user;
    if (frames.size() < kZapRequestFrames || frames[0].to_string_view() != "1.0") {
      text = "malformed ZAP request";
      spdlog::error("broker: malformed ZAP request ({} frames)", frames.size());
    } else {
      const std::string address = frames[3].to_string();
      const std::string mechanism = frames[5].to_string();
      const std::string key = frames.size() > 6 ? frames[6].to_string() : std::string();
      if (mechanism == "CURVE" && allowed_.count(key) > 0) {
        status = "200";
        text = "OK";
        user = Z85(key);
        ++accepted_;
        spdlog::debug("broker: CURVE peer {} from {} allowed", bus::CurveKeyPrefix(user), address);
      } else {
        ++refused_;
        LogRefusal("refused " + mechanism + " peer from " + address + " with key " +
                   (mechanism == "CURVE" ? bus::CurveKeyPrefix(Z85(key)) : "(none)") +
                   ": not on the allow list");
      }
    }
    const std::string reply[] = {"1.0", request_id, status, text, user, ""};
    for (size_t i = 0; i < 6; ++i) {
      zap_.send(zmq::buffer(reply[i]),
                i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

void CurveAuthenticator::HandleMonitor() {
  for (;;) {
    zmq::message_t event;
    if (!monitor_.recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t address;
    if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::none);
    if (event.size() < 6) continue;
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, event.data<char>() + 2, sizeof(value));
    ++refused_;
    LogRefusal("refused a peer on " + address.to_string() + ": CURVE handshake failed (" +
               (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? bus::DescribeHandshakeError(value)
                                                          : "no detail") +
               ")");
  }
}

void CurveAuthenticator::LogRefusal(const std::string& what) {
  uint64_t suppressed = 0;
  if (!log_limiter_.Allow(&suppressed)) return;
  if (suppressed > 0) {
    spdlog::warn("broker: {} ({} refusals not logged; {} refused in all)", what, suppressed,
                 refused_);
  } else {
    spdlog::warn("broker: {} ({} refused in all)", what, refused_);
  }
}

}  // namespace imbus::broker

#include "net/ws_session.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace imbus::net {

struct WsCallbacks {
  static ssize_t Recv(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int /*flags*/,
                      void* user) {
    auto* s = static_cast<WsSession*>(user);
    const long n = s->RecvInto(buf, len);
    if (n == 0) {
      wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    return n;
  }
  static ssize_t Send(wslay_event_context_ptr /*ctx*/, const uint8_t* data, size_t len,
                      int /*flags*/, void* user) {
    auto* s = static_cast<WsSession*>(user);
    s->out_->append(reinterpret_cast<const char*>(data), len);
    return static_cast<ssize_t>(len);
  }
  static int GenMask(wslay_event_context_ptr /*ctx*/, uint8_t* buf, size_t len, void* /*user*/) {
    return RAND_bytes(buf, static_cast<int>(len)) == 1 ? 0 : -1;
  }
  static void FrameStart(wslay_event_context_ptr /*ctx*/,
                         const wslay_event_on_frame_recv_start_arg* arg, void* user) {
    static_cast<WsSession*>(user)->OnFrameStart(arg->fin, arg->opcode, arg->payload_length);
  }
  static void Message(wslay_event_context_ptr /*ctx*/, const wslay_event_on_msg_recv_arg* arg,
                      void* user) {
    static_cast<WsSession*>(user)->OnMessage(arg->opcode, arg->msg, arg->msg_length,
                                             arg->status_code);
  }
};

namespace {
const wslay_event_callbacks kCallbacks = {
    WsCallbacks::Recv, WsCallbacks::Send, WsCallbacks::GenMask, WsCallbacks::FrameStart,
    nullptr,           nullptr,           WsCallbacks::Message,
};
}  // namespace

WsSession::WsSession(Role role, Limits limits) : role_(role), limits_(limits) {}

WsSession::~WsSession() {
  if (ctx_ != nullptr) wslay_event_context_free(ctx_);
}

void WsSession::EnsureContext() {
  if (ctx_ != nullptr) return;
  const int rc = role_ == Role::kServer ? wslay_event_context_server_init(&ctx_, &kCallbacks, this)
                                        : wslay_event_context_client_init(&ctx_, &kCallbacks, this);
  if (rc != 0) throw std::bad_alloc();
  wslay_event_config_set_max_recv_msg_length(ctx_, limits_.max_message);
}

void WsSession::ReleaseIfIdle() {
  // Between messages wslay holds nothing we need (it got whole frames only and its
  // output is drained), but its context keeps two 4 KiB buffers: an idle connection
  // gives them back and gets a fresh context with its next frame.
  if (ctx_ == nullptr || !in_tail_.empty() || fragments_ != 0 || failed_ || close_queued_ ||
      wslay_event_get_close_sent(ctx_) || wslay_event_get_close_received(ctx_)) {
    return;
  }
  wslay_event_context_free(ctx_);
  ctx_ = nullptr;
}

size_t WsSession::CompleteFrames(std::string_view in, uint16_t* fail_code, std::string* why) const {
  size_t pos = 0;
  while (in.size() - pos >= 2) {
    const uint8_t b0 = static_cast<uint8_t>(in[pos]);
    const uint8_t b1 = static_cast<uint8_t>(in[pos + 1]);
    const uint8_t len7 = b1 & 0x7f;
    const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    const size_t header = 2 + ext + ((b1 & 0x80) != 0 ? 4 : 0);
    if (in.size() - pos < 2 + ext) break;
    uint64_t length = len7;
    if (ext > 0) {
      length = 0;
      for (size_t i = 0; i < ext; ++i)
        length = (length << 8) | static_cast<uint8_t>(in[pos + 2 + i]);
    }
    if ((b0 & 0x08) != 0 && ((b0 & 0x80) == 0 || length > 125)) {
      *fail_code = kWsProtocolError;
      *why = "fragmented or oversized control frame";
      return pos;
    }
    // Refused from the header: a peer announcing a huge length is not waited for.
    if ((b0 & 0x08) == 0 && length > limits_.max_message) {
      *fail_code = kWsMessageTooBig;
      *why = "message over " + std::to_string(limits_.max_message) + " bytes";
      return pos;
    }
    if (in.size() - pos < header + length) break;
    pos += header + static_cast<size_t>(length);
  }
  return pos;
}

long WsSession::RecvInto(uint8_t* buf, size_t len) {
  const size_t n = std::min(len, in_len_);
  if (n > 0) std::memcpy(buf, in_, n);
  in_ += n;
  in_len_ -= n;
  return static_cast<long>(n);
}

void WsSession::OnFrameStart(uint8_t fin, uint8_t opcode, uint64_t length) {
  if ((opcode & 0x8) != 0) {  // a control frame: may come between fragments
    if (fin == 0 || length > 125) {
      Fail(kWsProtocolError, "fragmented or oversized control frame");
      return;
    }
    if (opcode == WSLAY_PING) ++pings_;
    return;
  }
  if (opcode != WSLAY_CONTINUATION_FRAME) {
    fragments_ = 0;
    message_bytes_ = 0;
  }
  // Refused from the header: a peer announcing a huge length is not waited for.
  if (length > limits_.max_message - std::min(message_bytes_, limits_.max_message)) {
    Fail(kWsMessageTooBig, "message over " + std::to_string(limits_.max_message) + " bytes");
    return;
  }
  message_bytes_ += length;
  if (++fragments_ > limits_.max_fragments) {
    Fail(kWsMessageTooBig,
         "more than " + std::to_string(limits_.max_fragments) + " fragments in one message");
  }
}

void WsSession::OnMessage(uint8_t opcode, const uint8_t* data, size_t len, uint16_t status) {
  (void)status;
  if (failed_ || messages_ == nullptr) return;
  if (opcode == WSLAY_BINARY_FRAME || opcode == WSLAY_TEXT_FRAME) {
    fragments_ = 0;
    message_bytes_ = 0;
    messages_->push_back(
        Message{opcode == WSLAY_BINARY_FRAME ? MessageType::kBinary : MessageType::kText,
                std::string(reinterpret_cast<const char*>(data), len)});
  }
}

void WsSession::Fail(uint16_t code, std::string reason) {
  if (failed_) return;
  failed_ = true;
  error_ = reason;
  EnsureContext();
  wslay_event_shutdown_read(ctx_);
  Close(code, reason);
}

bool WsSession::Feed(const char* data, size_t n, std::vector<Message>* messages) {
  if (failed_ || (ctx_ != nullptr && !wslay_event_get_read_enabled(ctx_))) return !failed_;
  // wslay gets whole frames only; a frame's start waits here for the rest of it.
  std::string_view input(data, n);
  if (!in_tail_.empty()) {
    in_tail_.append(data, n);
    input = in_tail_;
  }
  uint16_t fail_code = 0;
  std::string why;
  const size_t complete = CompleteFrames(input, &fail_code, &why);
  bool ok = true;
  if (complete > 0) ok = FeedFrames(input.data(), complete, messages);
  // A refused header after a close the peer sent is input after the end: ignored.
  const bool reading = ctx_ == nullptr || wslay_event_get_read_enabled(ctx_) != 0;
  if (ok && fail_code != 0 && reading) {
    Fail(fail_code, why);
    SendQueued();
    ok = false;
  }
  if (!ok) {
    std::string().swap(in_tail_);
    return false;
  }
  if (input.data() == in_tail_.data()) {
    in_tail_.erase(0, complete);
  } else {
    in_tail_.assign(input.substr(complete));
  }
  if (in_tail_.empty()) std::string().swap(in_tail_);
  ReleaseIfIdle();
  return true;
}

bool WsSession::FeedFrames(const char* data, size_t n, std::vector<Message>* messages) {
  EnsureContext();
  if (!wslay_event_get_read_enabled(ctx_)) return true;  // closed: input is ignored
  in_ = data;
  in_len_ = n;
  messages_ = messages;
  in_feed_ = true;
  const int rc = wslay_event_recv(ctx_);
  in_feed_ = false;
  messages_ = nullptr;
  in_ = nullptr;
  in_len_ = 0;
  if (rc != 0 && !failed_) {
    failed_ = true;
    error_ = "websocket protocol error";
  }
  // wslay stops reading after a protocol error or an oversized message, having
  // queued the close that says so (a close received also stops it: not a failure).
  if (!failed_ && !wslay_event_get_read_enabled(ctx_) && !wslay_event_get_close_received(ctx_)) {
    failed_ = true;
    error_ = "websocket protocol error or message over the limit";
  }
  const size_t before = pending_.size();
  SendQueued();
  if (close_code_ == 0 && wslay_event_get_close_sent(ctx_)) {
    close_code_ = wslay_event_get_status_code_sent(ctx_);
    // wslay fails a frame it cannot parse (a fragmented or oversized control frame)
    // with an empty close; say 1002 instead. A server's close is unmasked: 88 00.
    if (failed_ && close_code_ == kWsNoStatus && role_ == Role::kServer &&
        pending_.size() >= before + 2 &&
        std::string_view(pending_).substr(pending_.size() - 2) == std::string_view("\x88\x00", 2)) {
      pending_.resize(pending_.size() - 2);
      pending_.append("\x88\x02\x03\xea", 4);
      close_code_ = kWsProtocolError;
    }
  }
  if (failed_ && error_.find("protocol") != std::string::npos) {
    error_ = close_code_ == kWsMessageTooBig
                 ? "message over " + std::to_string(limits_.max_message) + " bytes"
                 : "websocket protocol error";
  }
  return !failed_;
}

bool WsSession::SendMessage(std::string_view data, MessageType type) {
  if (closing()) return false;
  EnsureContext();
  wslay_event_msg msg{};
  msg.opcode = type == MessageType::kBinary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME;
  msg.msg = reinterpret_cast<const uint8_t*>(data.data());
  msg.msg_length = data.size();
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return false;
  SendQueued();
  if (!in_feed_) ReleaseIfIdle();
  return true;
}

bool WsSession::Close(uint16_t code, std::string_view reason) {
  if (closing()) return false;
  EnsureContext();
  reason = reason.substr(0, 123);
  if (wslay_event_queue_close(ctx_, code, reinterpret_cast<const uint8_t*>(reason.data()),
                              reason.size()) != 0) {
    return false;
  }
  close_queued_ = true;
  close_code_ = code;
  close_reason_ = std::string(reason);
  if (!in_feed_) SendQueued();  // Feed sends after wslay_event_recv returned
  return true;
}

void WsSession::SendQueued() {
  out_ = &pending_;
  wslay_event_send(ctx_);
  out_ = nullptr;
}

void WsSession::Output(std::string* out) {
  if (pending_.empty()) return;
  if (out->empty()) {
    out->swap(pending_);
  } else {
    out->append(pending_);
  }
  std::string().swap(pending_);
}

bool WsSession::close_received() const {
  return ctx_ != nullptr && wslay_event_get_close_received(ctx_) != 0;
}
bool WsSession::close_sent() const {
  return ctx_ != nullptr && wslay_event_get_close_sent(ctx_) != 0;
}
uint16_t WsSession::close_code_received() const {
  return ctx_ == nullptr ? uint16_t{kWsAbnormal} : wslay_event_get_status_code_received(ctx_);
}

std::string WsAcceptKey(std::string_view key) {
  static constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(b64), static_cast<size_t>(n));
}

bool WsValidKey(std::string_view key) {
  // 16 bytes in base64: 22 characters and "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (size_t i = 0; i < 22; ++i) {
    const char ch = key[i];
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (!ok) return false;
  }
  // The last character before the padding carries 2 bits: its low 4 bits are zero.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return (kAlphabet.find(key[21]) & 0xF) == 0;
}

}  // namespace imbus::net

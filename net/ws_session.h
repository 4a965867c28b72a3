// Public. WsSession: one WebSocket connection's framing (RFC 6455) after the HTTP
// upgrade, over libwslay's event API, with no I/O of its own: the owner feeds it the
// bytes it read and takes the bytes to write. Messages come out whole (fragments
// reassembled, at most `max_message` bytes); pings are answered, closes echoed.
// wslay is handed whole frames only, and its context (two 4 KiB buffers) is freed
// whenever no message is in progress, so an idle session costs little more than
// its object.
//
// A server session requires masked client frames (an unmasked one is a protocol
// error: close 1002); a client session masks what it sends. Not thread-safe: one per
// connection, used by the thread that owns the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct wslay_event_context;

namespace imbus::net {

// Close codes used by imbus (RFC 6455 section 7.4.1).
enum WsCloseCode : uint16_t {
  kWsNormal = 1000,
  kWsGoingAway = 1001,
  kWsProtocolError = 1002,
  kWsUnsupportedData = 1003,
  kWsNoStatus = 1005,
  kWsAbnormal = 1006,
  kWsInvalidPayload = 1007,
  kWsPolicyViolation = 1008,
  kWsMessageTooBig = 1009,
  kWsInternalError = 1011,
  kWsTryAgainLater = 1013,
};

class WsSession {
 public:
  enum class Role { kServer, kClient };
  struct Limits {
    size_t max_message = 65536;  // a larger message (all fragments) is closed with 1009
    size_t max_fragments = 256;  // more frames in one message: closed with 1009
  };

  WsSession(Role role, Limits limits);
  ~WsSession();
  WsSession(const WsSession&) = delete;
  WsSession& operator=(const WsSession&) = delete;

  enum class MessageType { kBinary, kText };
  struct Message {
    MessageType type;
    std::string data;
  };

  // Parses `n` received bytes. Whole data messages are appended to *messages; pings
  // queue their pong, a close queues the answering close. False when the session
  // failed (a protocol error, a limit): the close frame that says why is queued
  // (close_code_sent()); read nothing more, write what Output gives, then close.
  bool Feed(const char* data, size_t n, std::vector<Message>* messages);

  // Queues one message (binary unless told); false when no more can be sent (a close
  // was queued or sent).
  bool SendMessage(std::string_view data, MessageType type = MessageType::kBinary);
  // Queues a close frame with `code` and a short reason (cut to 123 bytes); nothing
  // more is read or sent after it. False when a close was already queued.
  bool Close(uint16_t code, std::string_view reason);
  // Moves the encoded frames queued so far to the end of *out.
  void Output(std::string* out);

  // Pings received since the last call (the owner rate-limits them).
  uint64_t TakePings() {
    const uint64_t n = pings_;
    pings_ = 0;
    return n;
  }
  bool close_received() const;
  bool close_sent() const;
  // Queued or sent: the session is ending.
  bool closing() const { return close_queued_ || close_sent(); }
  uint16_t close_code_received() const;  // kWsAbnormal when none
  uint16_t close_code_sent() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  bool failed() const { return failed_; }
  // True while wslay's context (with its buffers) is allocated.
  bool holds_context() const { return ctx_ != nullptr; }
  const std::string& error() const { return error_; }

 private:
  // libwslay's callbacks (static trampolines to these).
  friend struct WsCallbacks;
  long RecvInto(uint8_t* buf, size_t len);
  void OnFrameStart(uint8_t fin, uint8_t opcode, uint64_t length);
  void OnMessage(uint8_t opcode, const uint8_t* data, size_t len, uint16_t status);

  void Fail(uint16_t code, std::string reason);
  // The wslay context exists only while needed (see ReleaseIfIdle).
  void EnsureContext();
  void ReleaseIfIdle();
  // The length of the whole frames at the start of `in`; sets *fail_code (and *why)
  // when a header there is refused outright.
  size_t CompleteFrames(std::string_view in, uint16_t* fail_code, std::string* why) const;
  // Hands whole frames to wslay; false when the session failed.
  bool FeedFrames(const char* data, size_t n, std::vector<Message>* messages);
  // Encodes what wslay has queued into pending_.
  void SendQueued();

  wslay_event_context* ctx_ = nullptr;
  Role role_;
  Limits limits_;
  // During Feed: the input not yet handed to wslay, and where messages go.
  const char* in_ = nullptr;
  size_t in_len_ = 0;
  std::vector<Message>* messages_ = nullptr;
  bool in_feed_ = false;
  std::string in_tail_;  // the start of a frame not yet whole
  // Where wslay's send callback writes: pending_, handed out by Output.
  std::string* out_ = nullptr;
  std::string pending_;
  size_t fragments_ = 0;        // frames of the data message being received
  uint64_t message_bytes_ = 0;  // its payload announced so far
  uint64_t pings_ = 0;
  bool close_queued_ = false;
  bool failed_ = false;
  uint16_t close_code_ = 0;
  std::string close_reason_;
  std::string error_;
};

// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (base64 of the SHA-1 of the
// key and the RFC's GUID).
std::string WsAcceptKey(std::string_view key);
// True when `key` is base64 of exactly 16 bytes (RFC 6455 section 4.1).
bool WsValidKey(std::string_view key);

}  // namespace imbus::net

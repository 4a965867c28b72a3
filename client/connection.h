// Public. Connection: one client-side TCP connection speaking PROTOCOL v1 frames, to
// an edge or (for P2P) to another client. Requests carry a sequence number it
// allocates; responses are matched by seq whatever order they arrive in, and pushes
// (and responses nobody waits for yet) are queued meanwhile.
//
// Blocking API over a non-blocking socket: every wait is bounded by a timeout and
// implemented with poll(2). Not thread-safe: a Connection belongs to one thread.
// Move-only; the socket closes with the object.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "client/tls.h"
#include "net/unique_fd.h"
#include "codec/body.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"

namespace imbus::client {

// Local outcomes reported in Response::code when no server code is available. They
// are negative so they never collide with PROTOCOL.md codes (0..10, maybe more).
inline constexpr int kCodeTimeout = -1;       // no response within the timeout
inline constexpr int kCodeDisconnected = -2;  // connection closed / never open / write failed
inline constexpr int kCodeBadResponse = -3;   // response body unparsable or lacks `code`
inline constexpr int kCodeLocal = -4;         // a local failure outside the connection (a file)

// "TIMEOUT", "DISCONNECTED", "BAD_RESPONSE", "LOCAL", else codec::CodeName(code).
const char* ResultCodeName(int code);
// "UNAUTHENTICATED: wrong name or password": the code's name and the server's error
// text, or the code's description (codec::CodeDescription) when the text is empty.
std::string DescribeResult(int code, std::string_view error);

struct Response {
  int code = kCodeDisconnected;  // protocol code (0 = OK) or one of kCode* above
  std::string error;             // server's `error`, or why the call failed locally
  // RATE_LIMITED: the server's `retry_ms`, how long to wait before trying again (the
  // request was not carried out); 0 otherwise.
  int64_t retry_ms = 0;
  codec::Body body;      // whole response body (includes `code`)
  codec::Header header;  // header of the response frame (zeroed if none)

  bool ok() const { return code == 0; }
  std::string Describe() const { return DescribeResult(code, error); }
};

// A frame the server sent on its own (PUSH flag), a SYS/ERROR, or on P2P connections
// a request from the peer (flags 0; answer it with SendFrame(kFlagResponse, ...)).
struct Push {
  uint16_t service = 0;
  uint16_t command = 0;
  codec::Body body;  // empty (nil root) when the body did not parse
  codec::Header header;

  // SYS/ERROR: the server found the stream broken and closes the connection.
  bool is_error() const;
};

struct ConnectOptions {
  std::chrono::milliseconds timeout{5000};
  // -1: ordinary ephemeral port. >= 0: bind this local port (0 = any) with
  // SO_REUSEADDR|SO_REUSEPORT before connecting, so a P2P listener can share it.
  int local_port = -1;
};

class Connection {
 public:
  Connection() = default;  // closed
  Connection(Connection&&) = default;
  Connection& operator=(Connection&&) = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Adopts an already connected socket (an accepted P2P connection). Sets O_NONBLOCK
  // and TCP_NODELAY.
  static Connection FromFd(net::UniqueFd fd);

  // Makes the following Connects speak TLS with `tls` (null: plain TCP again) and
  // check the server's certificate against `server_name` (empty: the host given to
  // Connect). The edge's TLS listener needs it; P2P connections stay plain.
  void UseTls(std::shared_ptr<const TlsClientContext> tls, std::string server_name = {}) {
    tls_ctx_ = std::move(tls);
    tls_server_name_ = std::move(server_name);
  }

  // Connects to host:port (name or address) within the timeout, then (UseTls)
  // completes the TLS handshake within the same timeout. On failure returns false
  // and sets *error to the bare reason ("Connection refused", "timed out after 5000
  // ms", "cannot resolve 'x': ...", "TLS handshake failed: certificate verify
  // failed: ..."), for the caller to put in context.
  bool Connect(const std::string& host, uint16_t port, const ConnectOptions& options,
               std::string* error);
  bool Connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
               std::string* error) {
    return Connect(host, port, ConnectOptions{timeout, -1}, error);
  }

  // Writes a request frame (flags 0) and returns its seq, or 0 when the connection
  // is closed or the write failed (then closed() is true).
  uint32_t Send(uint16_t service, uint16_t command, std::string_view body);
  // Writes a frame with explicit flags and seq (P2P responses). False on failure.
  bool SendFrame(uint16_t flags, uint16_t service, uint16_t command, uint32_t seq,
                 std::string_view body);
  // Writes raw bytes as they are (tests sending malformed or split frames).
  bool SendRaw(std::string_view bytes);

  // Send + WaitResponse. On timeout returns code kCodeTimeout with error "no response
  // within N ms"; the connection stays open and the late response, if it comes, is
  // dropped. On a closed connection (or one that closes meanwhile) kCodeDisconnected
  // with close_reason() as error. A response whose body does not parse or lacks an
  // integer `code` gives kCodeBadResponse.
  Response Call(uint16_t service, uint16_t command, std::string_view body,
                std::chrono::milliseconds timeout);
  // Waits for the response with this seq, queueing everything else that arrives.
  // Same results as Call.
  Response WaitResponse(uint32_t seq, std::chrono::milliseconds timeout);

  // The oldest queued non-response frame (push, SYS/ERROR, P2P request), waiting up
  // to `timeout` for one; nullopt on timeout or when closed with nothing queued.
  std::optional<Push> WaitPush(std::chrono::milliseconds timeout);
  // Reads what is available without blocking and returns the oldest queued push.
  std::optional<Push> PollPushes() { return WaitPush(std::chrono::milliseconds(0)); }

  // Raw access: the oldest queued frame of any kind, in arrival order, waiting up to
  // `timeout`. Bypasses seq matching (tests, load generators).
  std::optional<codec::Frame> NextFrame(std::chrono::milliseconds timeout);

  // True once the socket is gone (peer closed, SYS/ERROR received, broken stream,
  // write error, Close()). Frames received before that stay readable.
  bool closed() const { return !fd_.valid(); }
  // Why it closed: "closed by peer", "server error: BAD_REQUEST: ...", ...
  const std::string& close_reason() const { return close_reason_; }
  void Close() { CloseWith("closed locally"); }

  // The socket, for poll(2). Over TLS, decrypted frames are read out of OpenSSL
  // whenever the socket is drained, so POLLIN on it stays a truthful "more to read".
  int fd() const { return fd_.get(); }
  bool tls() const { return tls_ != nullptr; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384", or "plain".
  std::string TlsDescription() const { return tls_ ? tls_->Description() : "plain"; }
  uint16_t local_port() const { return local_port_; }
  // Frames received and not yet taken (responses and pushes).
  size_t queued() const { return inbox_.size(); }

 private:
  using Clock = std::chrono::steady_clock;

  // Reads whatever arrives until `deadline` (at most one poll wakeup with data);
  // false on timeout or when closed.
  bool ReadOnce(Clock::time_point deadline);
  // Drains the socket and decodes frames into inbox_.
  void ReadAvailable();
  bool WriteAll(std::string_view bytes);
  // recv(2)/send(2) semantics over the socket or TLS (EAGAIN also for TLS's
  // WANT_READ/WANT_WRITE; EPROTO with *tls_error for a TLS failure).
  ssize_t ReceiveSome(char* buf, size_t n, std::string* tls_error);
  ssize_t SendSome(const char* buf, size_t n, std::string* tls_error);
  bool Handshake(const std::string& server_name, std::chrono::milliseconds timeout,
                 Clock::time_point deadline, std::string* error);
  void CloseWith(std::string reason);
  static std::optional<Push> ToPush(codec::Frame frame);

  net::UniqueFd fd_;
  std::unique_ptr<TlsStream> tls_;                   // null: plain TCP
  std::shared_ptr<const TlsClientContext> tls_ctx_;  // set by UseTls
  std::string tls_server_name_;
  codec::FrameDecoder decoder_{codec::FrameDecoder::Sender::kServer};
  std::deque<codec::Frame> inbox_;          // arrival order
  std::unordered_set<uint32_t> abandoned_;  // seqs whose Call timed out
  uint32_t next_seq_ = 1;
  uint16_t local_port_ = 0;
  std::string close_reason_ = "not connected";
  std::string out_;  // scratch buffer for encoding
};

}  // namespace imbus::client

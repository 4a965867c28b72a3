// Internal to edge/. Connection: one client TCP connection of an edge thread: its
// socket, the frame decoder, the bounded output buffer and the login state.
//
// Kept small because an edge holds 100k of them: buffers are released whenever they
// are empty, so an idle connection costs a few hundred bytes. Owned by its EdgeLoop
// and touched only by that loop's thread.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/token_bucket.h"
#include "codec/bus.h"
#include "codec/frame_decoder.h"
#include "edge/tls_context.h"
#include "net/unique_fd.h"
#include "net/ws_session.h"

namespace imbus::edge {

using Clock = std::chrono::steady_clock;

class Connection {
 public:
  Connection(uint64_t id, net::UniqueFd fd, uint32_t max_frame, std::string peer_host,
             uint16_t peer_port, Clock::time_point now);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  enum class WriteResult { kOk, kSlowReader, kError };

  // TLS: the connection speaks through `ssl` (made for this socket) from now on.
  // Plain connections never get one and take the recv/send path unchanged.
  void StartTls(SslPtr ssl) { tls_ = std::move(ssl); }
  bool tls() const { return tls_ != nullptr; }
  bool handshaking() const { return tls_ != nullptr && !handshake_done_; }
  enum class HandshakeResult { kDone, kAgain, kError };
  // Advances the server handshake as far as the socket allows. On kError the
  // OpenSSL error queue says why (net::TlsErrorText).
  HandshakeResult ContinueHandshake();
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done.
  std::string TlsDescription() const;

  // recv(2) semantics for both kinds: > 0 bytes read, 0 end of stream, -1 with errno
  // (EAGAIN: nothing now, TLS included; EPROTO: TLS failure, reason in the OpenSSL
  // error queue).
  ssize_t Receive(char* buf, size_t n) {
    return tls_ == nullptr ? ::recv(fd_.get(), buf, n, 0) : TlsReceive(buf, n);
  }

  // Queues one encoded frame: written at once when nothing is pending, otherwise
  // appended (the rest goes out on EPOLLOUT). kSlowReader when the pending output
  // would exceed `max_output`; kError when the socket failed. Either way the caller
  // closes the connection.
  WriteResult Send(std::string_view bytes, size_t max_output);
  // Appends one encoded frame without writing it: the caller flushes after the burst
  // it is handling, so a burst costs one send per connection, not one per frame.
  // Writes what is pending first when the frame would not fit under `max_output`;
  // results as Send.
  WriteResult Queue(std::string_view bytes, size_t max_output);
  // Set while the connection is on its loop's list of queued output to flush.
  bool flush_listed() const { return flush_listed_; }
  void set_flush_listed(bool listed) { flush_listed_ = listed; }
  // Writes pending output until done or EAGAIN (on EPOLLOUT).
  WriteResult Flush();
  bool has_output() const { return out_pos_ < out_.size(); }
  size_t pending_output() const { return out_.size() - out_pos_; }

  // What the bytes on the connection are: imbus frames (the plain and TLS
  // listeners), HTTP requests (the WebSocket listeners, until an upgrade), or
  // WebSocket messages of one frame each (after the upgrade).
  enum class Kind : uint8_t { kFrames, kHttp, kWebSocket };
  Kind kind() const { return kind_; }
  void StartHttp() { kind_ = Kind::kHttp; }
  // Request bytes not yet parsed (kHttp only).
  std::string& http_input() { return http_in_; }
  void StartWebSocket(std::unique_ptr<net::WsSession> ws) {
    kind_ = Kind::kWebSocket;
    std::string().swap(http_in_);
    ws_ = std::move(ws);
  }
  net::WsSession* ws() { return ws_.get(); }

  uint64_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  codec::FrameDecoder& decoder() { return decoder_; }
  const std::string& peer_host() const { return peer_host_; }
  uint16_t peer_port() const { return peer_port_; }

  Clock::time_point last_activity() const { return last_activity_; }
  void Touch(Clock::time_point now) { last_activity_ = now; }

  bool logged_in() const { return logged_in_; }
  const codec::SessionInfo& session() const { return session_; }
  void LogIn(codec::SessionInfo session);
  void LogOut();

  // Per-connection rate limits (the rates themselves are in EdgeOptions).
  net::TokenBucket& request_bucket() { return request_bucket_; }
  net::TokenBucket& send_bucket() { return send_bucket_; }
  // Counted in IpLimits' per-address connections (to be released on close).
  bool ip_counted() const { return ip_counted_; }
  void set_ip_counted() { ip_counted_ = true; }

  // Closing: no more input is read, output drains, then the socket is shut down.
  bool closing() const { return closing_; }
  void set_closing() { closing_ = true; }
  // The write side was shut down after the final flush; waiting for the peer's EOF.
  bool shut_down() const { return shut_down_; }
  void ShutdownWrite();
  // Closed: the socket is gone; the object waits for the end of the loop iteration.
  bool closed() const { return !fd_.valid(); }
  void CloseSocket() {
    tls_.reset();  // the SSL does not own the fd
    fd_.Reset();
  }

 private:
  ssize_t TlsReceive(char* buf, size_t n);
  // Writes what the socket (or TLS) takes now; bytes written, or -1 on failure.
  ssize_t WriteSome(const char* data, size_t n);
  // Adds bytes behind the pending output (no size check).
  void Append(std::string_view bytes);

  uint64_t id_;
  net::UniqueFd fd_;
  SslPtr tls_;  // null for plain TCP
  bool logged_in_ = false;
  bool closing_ = false;
  bool shut_down_ = false;
  bool ip_counted_ = false;
  bool handshake_done_ = false;
  bool flush_listed_ = false;
  Kind kind_ = Kind::kFrames;
  uint16_t peer_port_;
  codec::FrameDecoder decoder_;
  std::string out_;
  size_t out_pos_ = 0;  // start of the unwritten bytes in out_
  Clock::time_point last_activity_;
  net::TokenBucket request_bucket_;
  net::TokenBucket send_bucket_;
  std::string peer_host_;
  codec::SessionInfo session_;
  std::string http_in_;                 // kHttp: the request head so far
  std::unique_ptr<net::WsSession> ws_;  // kWebSocket: the framing
};

}  // namespace imbus::edge

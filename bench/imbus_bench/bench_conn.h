// Internal to imbus-bench. One client connection driven by the EventLoop:
// non-blocking connect from a chosen source address, frames out through one
// buffer, frames in through codec::FrameDecoder, responses matched by seq to a
// callback, pushes handed to on_push. Owned by the scenario for the whole run and
// never destroyed while the loop runs (a closed connection just ignores events).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "bench/imbus_bench/event_loop.h"
#include "client/tls.h"
#include "codec/body.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"
#include "net/ws_session.h"

namespace imbus::bench {

// The code a callback sees when the connection closed before the response came.
inline constexpr int kConnLost = -1;

class BenchConn : public EventLoop::Handler {
 public:
  enum class State { kIdle, kConnecting, kOpen, kClosed };
  // code is the response's `code` (0 = OK) or kConnLost; body is empty then.
  using ReplyFn = std::function<void(int code, const codec::Body& body)>;
  using PushFn = std::function<void(const codec::Frame& frame, const codec::Body& body)>;

  BenchConn(EventLoop* loop, size_t index) : loop_(loop), index_(index) {}
  ~BenchConn() override;
  BenchConn(const BenchConn&) = delete;
  BenchConn& operator=(const BenchConn&) = delete;

  // Starts a non-blocking connect to `server` from `source` (port chosen at connect
  // time: IP_BIND_ADDRESS_NO_PORT, so ports are shared across destinations).
  // on_open or on_close follows. False (and *error) when it failed at once. With
  // `tls` the TLS handshake (certificate checked against the server's IP unless the
  // context does not verify) runs before on_open.
  bool Start(const sockaddr_in& server, const sockaddr_in& source, std::string* error,
             const client::TlsClientContext* tls = nullptr);
  // From now on Start opens a WebSocket (the edge's --ws-listen port): the HTTP
  // upgrade runs before on_open, then each frame travels as one binary message.
  void UseWebSocket() { ws_wanted_ = true; }
  void Close();

  // Sends a request; `fn` runs on its response (or with kConnLost).
  void Request(uint16_t service, uint16_t command, std::string_view body, ReplyFn fn);

  void set_on_open(std::function<void()> f) { on_open_ = std::move(f); }
  void set_on_close(std::function<void(const std::string& why)> f) { on_close_ = std::move(f); }
  void set_on_push(PushFn f) { on_push_ = std::move(f); }

  State state() const { return state_; }
  size_t index() const { return index_; }
  size_t pending() const { return pending_.size(); }
  int64_t last_send_ns() const { return last_send_ns_; }
  int64_t connect_started_ns() const { return connect_started_ns_; }

  uint64_t uid = 0;  // set by whoever logs the connection in

  void OnEvents(uint32_t events) override;

 private:
  void OnReadable();
  // Reads into the decoder: false when the connection failed (already reported).
  bool ReadPlain();
  bool ReadTls();
  void Flush();
  // Sends out_ from out_pos_ as far as the socket takes it; false on failure.
  bool WriteOut();
  // TLS only: one handshake step after the TCP connect; on_open when done.
  void ContinueHandshake();
  void SetInterest(bool want_write);
  void Fail(const std::string& why);
  void UpdateInterest();
  // WebSocket: sends the upgrade request once connected.
  void StartUpgrade();
  // Handles bytes read while the upgrade answer is awaited; false on failure.
  bool OnUpgradeBytes(const char* data, size_t n);
  // Bytes read from the socket: into the decoder, through the WebSocket if any.
  bool Received(const char* data, size_t n);
  // Completes the open (after TCP, TLS or the upgrade).
  void Opened();

  EventLoop* loop_;
  size_t index_;
  int fd_ = -1;
  const client::TlsClientContext* tls_ctx_ = nullptr;
  std::string tls_name_;                    // the server's IP, checked in its certificate
  std::unique_ptr<client::TlsStream> tls_;  // null: plain TCP (or not connected yet)
  bool handshaking_ = false;
  State state_ = State::kIdle;
  codec::FrameDecoder decoder_{codec::FrameDecoder::Sender::kServer};
  std::string out_;
  size_t out_pos_ = 0;
  bool want_write_ = false;
  uint32_t next_seq_ = 1;
  std::unordered_map<uint32_t, ReplyFn> pending_;
  int64_t last_send_ns_ = 0;
  int64_t connect_started_ns_ = 0;
  std::function<void()> on_open_;
  std::function<void(const std::string&)> on_close_;
  PushFn on_push_;
  bool ws_wanted_ = false;
  bool upgrading_ = false;
  std::unique_ptr<net::WsSession> ws_;  // after the upgrade
  std::string http_in_;                 // the upgrade answer so far
  std::string queued_frames_;           // frames requested before the WebSocket opened
  std::vector<net::WsSession::Message> ws_messages_;
};

}  // namespace imbus::bench

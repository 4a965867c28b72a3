// Internal to edge/. Connection: one client TCP connection of an edge thread: its
// socket, the frame decoder, the bounded output buffer and the login state.
//
// Kept small because an edge holds 100k of them: buffers are released whenever they
// are empty, so an idle connection costs a few hundred bytes. Owned by its EdgeLoop
// and touched only by that loop's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bus/token_bucket.h"
#include "codec/bus.h"
#include "codec/frame_decoder.h"
#include "edge/unique_fd.h"

namespace imbus::edge {

using Clock = std::chrono::steady_clock;

class Connection {
 public:
  Connection(uint64_t id, UniqueFd fd, uint32_t max_frame, std::string peer_host,
             uint16_t peer_port, Clock::time_point now);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  enum class WriteResult { kOk, kSlowReader, kError };

  // Queues one encoded frame: written at once when nothing is pending, otherwise
  // appended (the rest goes out on EPOLLOUT). kSlowReader when the pending output
  // would exceed `max_output`; kError when the socket failed. Either way the caller
  // closes the connection.
  WriteResult Send(std::string_view bytes, size_t max_output);
  // Writes pending output until done or EAGAIN (on EPOLLOUT).
  WriteResult Flush();
  bool has_output() const { return out_pos_ < out_.size(); }
  size_t pending_output() const { return out_.size() - out_pos_; }

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
  bus::TokenBucket& request_bucket() { return request_bucket_; }
  bus::TokenBucket& send_bucket() { return send_bucket_; }
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
  void CloseSocket() { fd_.Reset(); }

 private:
  uint64_t id_;
  UniqueFd fd_;
  bool logged_in_ = false;
  bool closing_ = false;
  bool shut_down_ = false;
  bool ip_counted_ = false;
  uint16_t peer_port_;
  codec::FrameDecoder decoder_;
  std::string out_;
  size_t out_pos_ = 0;  // start of the unwritten bytes in out_
  Clock::time_point last_activity_;
  bus::TokenBucket request_bucket_;
  bus::TokenBucket send_bucket_;
  std::string peer_host_;
  codec::SessionInfo session_;
};

}  // namespace imbus::edge

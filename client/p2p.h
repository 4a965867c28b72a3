// Public. P2pSession: direct client-to-client chat (PROTOCOL.md service 6 P2P) with
// fallback to MSG/SEND through the server.
//
// The client's edge connection and its P2P listener share ONE local port (both bound
// with SO_REUSEADDR|SO_REUSEPORT), so the public address the edge observed is the one
// that reaches us through a NAT. To talk to a peer: Start(uid) asks PEER_ADDR (the
// server pushes P2P_INCOMING to the peer, which calls Accept()); both sides then dial
// every address of the other (local first, then public) from that same port while
// accepting on the listener — TCP simultaneous open crosses both NATs. The lower uid
// sends HELLO first on one connection; the other side checks the ticket, answers,
// drops the other candidates and sends its own HELLO back. When nothing succeeds
// within P2pOptions::direct_timeout the session is relayed (MSG/SEND).
//
// Not thread-safe: belongs to the thread of its Client. Move-only (owns sockets).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/connection.h"
#include "client/presence_api.h"
#include "net/unique_fd.h"

namespace imbus::client {

enum class P2pPath { kNone, kDirect, kRelayed };
// "none", "direct", "relayed".
const char* P2pPathName(P2pPath path);

struct P2pOptions {
  // How long to try for a direct connection before relaying.
  std::chrono::milliseconds direct_timeout{5000};
  // A P2P TEXT not answered within this is a vanished peer.
  std::chrono::milliseconds call_timeout{3000};
  // Pause between dial attempts to one address.
  std::chrono::milliseconds redial{150};
};

// Something that happened on the P2P side, for the caller to show.
struct P2pEvent {
  enum class Kind { kText, kPathChanged };
  Kind kind = Kind::kText;
  uint64_t from = 0;
  std::string text;
  int64_t ts = 0;
  std::string note;  // kPathChanged: why ("peer closed the direct connection")
};

// Use: ConnectAndListen (or Client::Connect with local_port 0, then Listen),
// FillLogin + Client::Login, then Start/Accept, Send and Poll.
class P2pSession {
 public:
  explicit P2pSession(Client* client, P2pOptions options = {})
      : client_(client), options_(options) {}
  P2pSession(P2pSession&&) = default;
  P2pSession& operator=(P2pSession&&) = default;

  // Connect + listen; false with *error on failure. After it, log in with a
  // LoginRequest passed through FillLogin.
  bool ConnectAndListen(const std::string& host, uint16_t port, std::string* error);
  // Listens on the local port of the client's already connected (reusable) socket.
  bool Listen(std::string* error);
  void FillLogin(LoginRequest* login) const;

  // Asks PEER_ADDR and tries a direct connection; the path now in use.
  P2pPath Start(uint64_t peer_uid);
  // The peer asked for us (P2P_INCOMING): dial back. The path now in use.
  P2pPath Accept(const P2pIncoming& incoming);

  // Sends `text` to the peer: P2P TEXT when direct (falling back to the relay if the
  // peer does not answer), else MSG/SEND. Returns the path that carried it, or kNone
  // when both failed (*error says why).
  P2pPath Send(const std::string& text, std::string* error);

  // Reads the direct connection and the listener for up to `timeout`: incoming TEXT
  // (answered), BYE or a closed connection (the session falls back to the relay),
  // strangers on the listener (HELLO with a wrong ticket: UNAUTHENTICATED, closed).
  std::vector<P2pEvent> Poll(std::chrono::milliseconds timeout);

  // Says BYE and closes the direct connection; the session becomes relayed.
  void Close();

  P2pPath path() const { return path_; }
  uint64_t peer() const { return peer_; }
  uint16_t port() const { return port_; }
  const std::string& local_host() const { return local_host_; }
  // For the caller's poll(): listener and direct connection (-1 when absent).
  int listener_fd() const { return listener_.get(); }
  int direct_fd() const { return direct_.closed() ? -1 : direct_.fd(); }

 private:
  // A connection accepted outside Establish, waiting for its HELLO.
  struct Stranger {
    Connection conn;
    std::chrono::steady_clock::time_point deadline;
  };

  P2pPath Establish(uint64_t peer_uid, const std::string& ticket,
                    const std::vector<PeerAddress>& addrs);
  // Handles one frame from the peer on the direct connection (request or stray).
  void HandleDirectFrame(const codec::Frame& frame, std::vector<P2pEvent>* events);
  void AcceptStrangers();
  void ServeStrangers();
  void FallBack(std::string note, std::vector<P2pEvent>* events);
  uint64_t self() const;

  Client* client_;
  P2pOptions options_;
  net::UniqueFd listener_;
  uint16_t port_ = 0;
  std::string local_host_;
  uint64_t peer_ = 0;
  std::string ticket_;  // the server's ticket for the current pair
  P2pPath path_ = P2pPath::kNone;
  Connection direct_;
  std::vector<Stranger> strangers_;
  std::deque<P2pEvent> pending_;  // events seen while waiting for a response
};

}  // namespace imbus::client

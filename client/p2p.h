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
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/connection.h"
#include "client/file_api.h"
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
  // kFileStarted: the peer offered a file and it is being received (name, size,
  // offset = bytes already held). kFileReceived: it arrived whole with the right
  // sha256 (path). kFileBroken: the direct connection ended or the check failed
  // midway; `path` is the .part holding the first `offset` bytes (kept when the
  // check did not fail): the sender falls back to a stored upload and a file message,
  // and DownloadFile to the same path (minus ".part") fetches only the rest.
  enum class Kind { kText, kPathChanged, kFileStarted, kFileReceived, kFileBroken };
  Kind kind = Kind::kText;
  uint64_t from = 0;
  std::string text;
  int64_t ts = 0;
  std::string note;  // kPathChanged, kFileBroken: why ("peer closed the direct connection")
  // Files (docs/protocol.md 6.9 "Sending a file directly").
  std::string name;
  std::string path;
  std::string sha256;  // raw 32 bytes
  uint64_t size = 0;
  uint64_t offset = 0;
};

// What P2pSession::SendFile achieved.
struct P2pFileResult {
  bool done = false;    // the receiver has the whole file, checked
  uint64_t offset = 0;  // how far the receiver got
  std::string error;    // why not done
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

  // Files. Offers from the peer are accepted into `dir` (NAME.part there, renamed to
  // NAME, or NAME.1 ... when taken, after the size and sha256 check). Empty (the
  // default): offers are refused with UNSUPPORTED.
  void set_receive_dir(std::string dir) { receive_dir_ = std::move(dir); }
  // Sends a file over the direct connection: FILE_OFFER, FILE_CHUNKs of 32 KiB each
  // answered, FILE_DONE. A connection that breaks or stops answering falls back (as
  // Send does) and the result says how far the receiver got. sha256: raw 32 bytes.
  P2pFileResult SendFile(const std::string& path, const std::string& name, uint64_t size,
                         const std::string& sha256, const std::string& mime,
                         const Progress& progress = {});

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
  // A request on the direct connection, answered within call_timeout; requests from
  // the peer meanwhile are served. nullopt when unanswered (*code = kCodeTimeout or
  // kCodeDisconnected), else the answer's body with *code its `code`.
  std::optional<codec::Body> CallDirect(uint16_t command, std::string_view body, int* code);
  void HandleFileFrame(const codec::Frame& frame, std::vector<P2pEvent>* events);
  // The file being received broke off: event kFileBroken, .part kept unless `drop`.
  void AbandonIncoming(std::string note, bool drop, std::vector<P2pEvent>* events);

  // A file being received.
  struct Incoming {
    std::string name, part, sha256;
    uint64_t size = 0;
    uint64_t have = 0;
    net::UniqueFd fd;
  };

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
  std::string receive_dir_;
  std::optional<Incoming> incoming_;
};

// Sends the file at `path` to user `peer`: over `p2p`'s direct connection when one
// can be made (Start), else — or when it breaks midway — as a stored upload
// (UploadFile, resuming) followed by a file message (MSG/SEND `file`). `via`: the path
// that carried the bytes in the end.
struct FileSendOutcome {
  P2pPath via = P2pPath::kNone;
  uint64_t direct_bytes = 0;  // how far the direct transfer got
  std::string direct_error;   // why the direct transfer did not finish (if it did not)
  FileInfo stored;            // kRelayed: the uploaded file
  SentMessage message;        // kRelayed: the file message
};
Result<FileSendOutcome> SendFileDirectOrStored(P2pSession& p2p, Client& client, uint64_t peer,
                                               const std::string& path,
                                               const TransferOptions& options);

}  // namespace imbus::client

#include "client/p2p.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "client/msg_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "net/clock.h"
#include "net/socket.h"

namespace imbus::client {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint16_t kP2p = codec::ToWire(codec::Service::kP2p);
// A stranger on the listener must say HELLO within this.
constexpr milliseconds kStrangerTimeout{3000};
// An unanswered HELLO on one candidate: try another.
constexpr milliseconds kHelloTimeout{1500};

bool BindAny(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(port);
  return bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0;
}

// Starts a non-blocking connect to addr from local `port`; invalid on failure.
net::UniqueFd StartDial(const PeerAddress& addr, uint16_t port) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(addr.port);
  if (inet_pton(AF_INET, addr.host.c_str(), &to.sin_addr) != 1) return {};
  net::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid() || !net::SetReuseAddrPort(fd.get()) || !BindAny(fd.get(), port)) return {};
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 &&
      errno != EINPROGRESS) {
    return {};
  }
  return fd;
}

bool IsRequest(const codec::Frame& f) { return (f.header.flags & codec::kFlagResponse) == 0; }

codec::Body ParseBody(const codec::Frame& f) {
  codec::Body body;
  std::string ignored;
  if (!codec::Body::Parse(f.body, &body, &ignored)) return codec::Body();
  return body;
}

void Answer(Connection& conn, const codec::Frame& request, std::string_view body) {
  conn.SendFrame(codec::kFlagResponse, kP2p, request.header.command, request.header.seq, body);
}

void Refuse(Connection& conn, const codec::Frame& request, codec::Code code, std::string_view why) {
  Answer(conn, request, codec::ErrorBody(code, why));
}

std::string HelloBody(uint64_t uid, const std::string& ticket) {
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("ticket").Str(ticket);
  return w.Finish();
}

std::string HelloAnswer(uint64_t uid) {
  codec::MapWriter w(2);
  w.Key("code").Int(0);
  w.Key("uid").Uint(uid);
  return w.Finish();
}

// True when `request` is a HELLO from `peer` carrying `ticket`.
bool HelloMatches(const codec::Frame& request, uint64_t peer, const std::string& ticket) {
  if (request.header.service != kP2p || request.header.command != codec::p2p::kHello) return false;
  const codec::Body body = ParseBody(request);
  try {
    return !ticket.empty() && body.GetUint("uid").value_or(0) == peer &&
           body.GetString("ticket").value_or("") == ticket;
  } catch (const codec::BadField&) {
    return false;
  }
}

// code 0 and uid == peer in a HELLO response.
bool HelloAnswered(const codec::Frame& response, uint64_t peer) {
  const codec::Body body = ParseBody(response);
  try {
    return body.GetInt("code").value_or(-1) == 0 && body.GetUint("uid").value_or(0) == peer;
  } catch (const codec::BadField&) {
    return false;
  }
}

// Local addresses first (same LAN), then public ones; duplicates dropped.
std::vector<PeerAddress> DialOrder(std::vector<PeerAddress> addrs) {
  std::stable_partition(addrs.begin(), addrs.end(),
                        [](const PeerAddress& a) { return a.kind == "local"; });
  std::vector<PeerAddress> out;
  for (PeerAddress& a : addrs) {
    const bool seen = std::any_of(out.begin(), out.end(), [&](const PeerAddress& o) {
      return o.host == a.host && o.port == a.port;
    });
    if (!seen && a.port != 0) out.push_back(std::move(a));
  }
  return out;
}

struct Dial {
  PeerAddress addr;
  net::UniqueFd fd;
  Clock::time_point next;
};

// One TCP connection to the peer during Establish, and how far HELLO got on it.
struct Candidate {
  explicit Candidate(Connection c) : conn(std::move(c)) {}
  Connection conn;
  uint32_t hello_seq = 0;  // our HELLO, 0 = not sent
  Clock::time_point hello_deadline;
  bool peer_ok = false;  // the peer's HELLO had the right ticket
  bool our_ok = false;   // our HELLO was answered by the right uid
  bool dead = false;
};

}  // namespace

const char* P2pPathName(P2pPath path) {
  switch (path) {
    case P2pPath::kDirect:
      return "direct";
    case P2pPath::kRelayed:
      return "relayed";
    default:
      return "none";
  }
}

bool P2pSession::ConnectAndListen(const std::string& host, uint16_t port, std::string* error) {
  if (!client_->Connect(host, port, error, 0)) return false;
  return Listen(error);
}

bool P2pSession::Listen(std::string* error) {
  const int edge_fd = client_->connection().fd();
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (edge_fd < 0 || getsockname(edge_fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
      local.ss_family != AF_INET) {
    *error = "P2P needs an IPv4 connection to the edge";
    return false;
  }
  const auto* in = reinterpret_cast<const sockaddr_in*>(&local);
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
  local_host_ = host;
  port_ = ntohs(in->sin_port);
  net::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid() || !net::SetReuseAddrPort(fd.get()) || !BindAny(fd.get(), port_) ||
      listen(fd.get(), 16) != 0) {
    *error = "cannot listen on P2P port " + std::to_string(port_) + ": " + std::strerror(errno) +
             " (was the edge connection bound with local_port 0?)";
    return false;
  }
  listener_ = std::move(fd);
  return true;
}

void P2pSession::FillLogin(LoginRequest* login) const {
  if (port_ != 0) login->p2p_port = port_;
  login->local_host = local_host_;
}

uint64_t P2pSession::self() const { return client_->session() ? client_->session()->uid : 0; }

P2pPath P2pSession::Start(uint64_t peer_uid) {
  Close();
  peer_ = peer_uid;
  auto info = PeerAddr(*client_, peer_uid);
  if (!info.ok() || !info.value.online) {
    path_ = P2pPath::kRelayed;
    return path_;
  }
  return Establish(peer_uid, info.value.ticket, info.value.addrs);
}

P2pPath P2pSession::Accept(const P2pIncoming& incoming) {
  Close();
  return Establish(incoming.uid, incoming.ticket, incoming.addrs);
}

P2pPath P2pSession::Establish(uint64_t peer_uid, const std::string& ticket,
                              const std::vector<PeerAddress>& addrs) {
  peer_ = peer_uid;
  ticket_ = ticket;
  path_ = P2pPath::kRelayed;
  if (!listener_.valid() || ticket.empty() || self() == 0) return path_;
  const bool initiator = self() < peer_uid;  // sends the first HELLO
  const auto deadline = Clock::now() + options_.direct_timeout;
  std::vector<Dial> dials;
  for (PeerAddress& a : DialOrder(addrs)) dials.push_back(Dial{std::move(a), {}, Clock::now()});
  std::vector<Candidate> cands;

  while (Clock::now() < deadline) {
    const auto now = Clock::now();
    const bool committed = std::any_of(cands.begin(), cands.end(), [](const Candidate& c) {
      return c.hello_seq != 0 || c.peer_ok;
    });
    if (!committed) {
      for (Dial& d : dials) {
        if (!d.fd.valid() && now >= d.next) {
          d.fd = StartDial(d.addr, port_);
          if (!d.fd.valid()) d.next = now + options_.redial;
        }
      }
    }
    if (initiator && !committed) {
      for (Candidate& c : cands) {
        if (c.dead) continue;
        c.hello_seq = c.conn.Send(kP2p, codec::p2p::kHello, HelloBody(self(), ticket_));
        c.hello_deadline = now + kHelloTimeout;
        if (c.hello_seq == 0) c.dead = true;
        break;
      }
    }

    std::vector<pollfd> fds;
    fds.push_back({listener_.get(), POLLIN, 0});
    for (Dial& d : dials) fds.push_back({d.fd.get(), POLLOUT, 0});  // -1 is skipped
    for (Candidate& c : cands) fds.push_back({c.dead ? -1 : c.conn.fd(), POLLIN, 0});
    const int wait = std::min(net::RemainingMs(deadline), 50);
    if (::poll(fds.data(), fds.size(), wait) < 0 && errno != EINTR) break;

    for (;;) {  // accept everything pending
      net::UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) break;
      cands.emplace_back(Connection::FromFd(std::move(fd)));
    }
    for (size_t i = 0; i < dials.size(); ++i) {
      Dial& d = dials[i];
      if (!d.fd.valid() || fds[1 + i].revents == 0) continue;
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(d.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) {
        cands.emplace_back(Connection::FromFd(std::move(d.fd)));
        d.next = Clock::time_point::max();  // connected: no more dials to it
      } else {
        d.fd.Reset();
        d.next = Clock::now() + options_.redial;
      }
    }
    for (Candidate& c : cands) {
      // Stop reading once both HELLOs are done: what follows (the peer's first
      // TEXT) belongs to the chat and stays queued in the connection.
      while (!c.dead && !(c.peer_ok && c.our_ok)) {
        auto frame = c.conn.NextFrame(milliseconds(0));
        if (!frame) break;
        if (IsRequest(*frame)) {
          if (frame->header.service != kP2p || frame->header.command != codec::p2p::kHello) {
            continue;  // nothing but HELLO before the handshake
          }
          if (!HelloMatches(*frame, peer_, ticket_)) {
            Refuse(c.conn, *frame, codec::Code::kUnauthenticated, "wrong ticket or uid");
            c.dead = true;
            continue;
          }
          Answer(c.conn, *frame, HelloAnswer(self()));
          c.peer_ok = true;
          if (!initiator && c.hello_seq == 0) {
            c.hello_seq = c.conn.Send(kP2p, codec::p2p::kHello, HelloBody(self(), ticket_));
            c.hello_deadline = Clock::now() + kHelloTimeout;
          }
        } else if (c.hello_seq != 0 && frame->header.seq == c.hello_seq) {
          if (HelloAnswered(*frame, peer_)) {
            c.our_ok = true;
          } else {
            c.dead = true;
          }
        }
      }
      if (c.conn.closed()) c.dead = true;
      if (!c.dead && c.hello_seq != 0 && !c.our_ok && Clock::now() > c.hello_deadline) {
        c.dead = true;
      }
      if (!c.dead && c.peer_ok && c.our_ok) {
        direct_ = std::move(c.conn);
        path_ = P2pPath::kDirect;
        return path_;  // the other candidates close with `cands`
      }
    }
    cands.erase(
        std::remove_if(cands.begin(), cands.end(), [](const Candidate& c) { return c.dead; }),
        cands.end());
  }
  return path_;
}

P2pPath P2pSession::Send(const std::string& text, std::string* error) {
  if (peer_ == 0) {
    *error = "no peer";
    return P2pPath::kNone;
  }
  if (path_ == P2pPath::kDirect) {
    codec::MapWriter w(2);
    w.Key("text").Str(text);
    w.Key("ts").Int(net::WallNowMs());
    const uint32_t seq = direct_.Send(kP2p, codec::p2p::kText, w.Finish());
    const auto deadline = Clock::now() + options_.call_timeout;
    std::vector<P2pEvent> events;
    bool answered = false;
    while (seq != 0 && !answered && Clock::now() < deadline) {
      auto frame = direct_.NextFrame(milliseconds(net::RemainingMs(deadline)));
      if (!frame) break;
      if (IsRequest(*frame)) {
        HandleDirectFrame(*frame, &events);
      } else if (frame->header.seq == seq) {
        answered = ParseBody(*frame).GetInt("code").value_or(-1) == 0;
        break;
      }
    }
    for (P2pEvent& e : events) pending_.push_back(std::move(e));
    if (answered) return P2pPath::kDirect;
    events.clear();
    FallBack("the peer did not answer over the direct connection", &events);
    for (P2pEvent& e : events) pending_.push_back(std::move(e));
  }
  auto sent = SendToUser(*client_, peer_, NewCmid(), text);
  if (!sent.ok()) {
    *error = sent.Describe();
    return P2pPath::kNone;
  }
  if (path_ == P2pPath::kNone) path_ = P2pPath::kRelayed;
  return P2pPath::kRelayed;
}

std::vector<P2pEvent> P2pSession::Poll(milliseconds timeout) {
  std::vector<P2pEvent> events(std::make_move_iterator(pending_.begin()),
                               std::make_move_iterator(pending_.end()));
  pending_.clear();
  std::vector<pollfd> fds;
  if (listener_.valid()) fds.push_back({listener_.get(), POLLIN, 0});
  if (!direct_.closed()) fds.push_back({direct_.fd(), POLLIN, 0});
  for (Stranger& s : strangers_) fds.push_back({s.conn.fd(), POLLIN, 0});
  const bool quick = !events.empty() || direct_.queued() > 0;
  if (!fds.empty()) ::poll(fds.data(), fds.size(), quick ? 0 : static_cast<int>(timeout.count()));
  AcceptStrangers();
  ServeStrangers();
  if (path_ == P2pPath::kDirect) {
    while (auto frame = direct_.NextFrame(milliseconds(0))) {
      if (IsRequest(*frame)) HandleDirectFrame(*frame, &events);
    }
    if (direct_.closed() && path_ == P2pPath::kDirect) {
      FallBack("the direct connection closed (" + direct_.close_reason() + ")", &events);
    }
  }
  return events;
}

void P2pSession::HandleDirectFrame(const codec::Frame& frame, std::vector<P2pEvent>* events) {
  if (frame.header.service != kP2p) {
    Refuse(direct_, frame, codec::Code::kUnsupported, "only P2P commands here");
    return;
  }
  const codec::Body body = ParseBody(frame);
  switch (frame.header.command) {
    case codec::p2p::kText: {
      P2pEvent e;
      try {
        e.text = body.RequireString("text");
        e.ts = body.GetInt("ts").value_or(0);
      } catch (const codec::BadField& bad) {
        Refuse(direct_, frame, codec::Code::kBadRequest, bad.what());
        return;
      }
      e.from = peer_;
      Answer(direct_, frame, codec::OkBody());
      events->push_back(std::move(e));
      return;
    }
    case codec::p2p::kBye:
      Answer(direct_, frame, codec::OkBody());
      FallBack("the peer ended the direct chat", events);
      return;
    case codec::p2p::kFileOffer:
    case codec::p2p::kFileChunk:
    case codec::p2p::kFileDone:
      HandleFileFrame(frame, events);
      return;
    case codec::p2p::kHello:
      if (HelloMatches(frame, peer_, ticket_)) {
        Answer(direct_, frame, HelloAnswer(self()));
      } else {
        Refuse(direct_, frame, codec::Code::kUnauthenticated, "wrong ticket or uid");
      }
      return;
    default:
      Refuse(direct_, frame, codec::Code::kUnsupported, "unknown P2P command");
  }
}

void P2pSession::AcceptStrangers() {
  if (!listener_.valid()) return;
  for (;;) {
    net::UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;
    strangers_.push_back(
        Stranger{Connection::FromFd(std::move(fd)), Clock::now() + kStrangerTimeout});
  }
}

// Late or foreign connections: a HELLO with the current pair's ticket (a late
// candidate of ours) is answered and closed, as the chat is already set up or
// relayed; anything else is refused.
void P2pSession::ServeStrangers() {
  for (Stranger& s : strangers_) {
    while (auto frame = s.conn.NextFrame(milliseconds(0))) {
      if (!IsRequest(*frame)) continue;
      if (HelloMatches(*frame, peer_, ticket_)) {
        Answer(s.conn, *frame, HelloAnswer(self()));
      } else {
        Refuse(s.conn, *frame, codec::Code::kUnauthenticated, "wrong ticket or uid");
      }
      s.conn.Close();
    }
    if (Clock::now() > s.deadline) s.conn.Close();
  }
  strangers_.erase(std::remove_if(strangers_.begin(), strangers_.end(),
                                  [](const Stranger& s) { return s.conn.closed(); }),
                   strangers_.end());
}

void P2pSession::FallBack(std::string note, std::vector<P2pEvent>* events) {
  direct_.Close();
  if (incoming_) AbandonIncoming(note, false, events);
  if (path_ != P2pPath::kDirect) return;
  path_ = P2pPath::kRelayed;
  P2pEvent e;
  e.kind = P2pEvent::Kind::kPathChanged;
  e.from = peer_;
  e.note = std::move(note);
  events->push_back(std::move(e));
}

void P2pSession::Close() {
  if (incoming_) {
    std::vector<P2pEvent> events;
    AbandonIncoming("the direct connection was closed", false, &events);
    for (P2pEvent& e : events) pending_.push_back(std::move(e));
  }
  if (!direct_.closed()) {
    (void)direct_.Call(kP2p, codec::p2p::kBye, codec::EmptyBody(), milliseconds(500));
    direct_.Close();
  }
  if (path_ == P2pPath::kDirect) path_ = P2pPath::kRelayed;
}

namespace {

constexpr size_t kP2pChunk = 32768;  // docs/protocol.md 6.6

std::string OffsetBody(uint64_t offset) {
  codec::MapWriter w(2);
  w.Key("code").Int(0);
  w.Key("offset").Uint(offset);
  return w.Finish();
}

void PackBin(codec::MapWriter& w, std::string_view bytes) {
  w.packer().pack_bin(static_cast<uint32_t>(bytes.size()));
  w.packer().pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

// A file name as docs/protocol.md 6.9 allows it (no path can be made of it).
bool SafeName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char ch) {
    return ch == '/' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
  });
}

}  // namespace

void P2pSession::AbandonIncoming(std::string note, bool drop, std::vector<P2pEvent>* events) {
  if (!incoming_) return;
  P2pEvent e;
  e.kind = P2pEvent::Kind::kFileBroken;
  e.from = peer_;
  e.note = std::move(note);
  e.name = incoming_->name;
  e.path = incoming_->part;
  e.sha256 = incoming_->sha256;
  e.size = incoming_->size;
  e.offset = drop ? 0 : incoming_->have;
  incoming_->fd.Reset();
  if (drop) ::unlink(incoming_->part.c_str());
  incoming_.reset();
  events->push_back(std::move(e));
}

void P2pSession::HandleFileFrame(const codec::Frame& frame, std::vector<P2pEvent>* events) {
  const codec::Body body = ParseBody(frame);
  try {
    if (frame.header.command == codec::p2p::kFileOffer) {
      if (receive_dir_.empty()) {
        Refuse(direct_, frame, codec::Code::kUnsupported, "this client does not take files");
        return;
      }
      const std::string name = body.RequireString("name");
      const uint64_t size = body.RequireUint("size");
      const std::string sha = body.RequireString("sha256");
      if (!SafeName(name) || sha.size() != 32) {
        Refuse(direct_, frame, codec::Code::kBadRequest, "bad name or sha256");
        return;
      }
      if (incoming_) AbandonIncoming("a new offer replaced it", false, events);
      Incoming in;
      in.name = name;
      in.size = size;
      in.sha256 = sha;
      in.part = receive_dir_ + "/" + name + ".part";
      in.fd.Reset(::open(in.part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
      struct stat st {};
      if (!in.fd.valid() || ::fstat(in.fd.get(), &st) != 0) {
        Refuse(direct_, frame, codec::Code::kInternal, "cannot write " + in.part);
        return;
      }
      in.have = static_cast<uint64_t>(st.st_size);
      if (in.have > size) {
        if (::ftruncate(in.fd.get(), 0) != 0) {
          Refuse(direct_, frame, codec::Code::kInternal, "cannot truncate " + in.part);
          return;
        }
        in.have = 0;
      }
      P2pEvent e;
      e.kind = P2pEvent::Kind::kFileStarted;
      e.from = peer_;
      e.name = name;
      e.path = in.part;
      e.sha256 = sha;
      e.size = size;
      e.offset = in.have;
      Answer(direct_, frame, OffsetBody(in.have));
      incoming_ = std::move(in);
      events->push_back(std::move(e));
      return;
    }
    if (!incoming_) {
      Refuse(direct_, frame, codec::Code::kNotFound, "no file offered");
      return;
    }
    Incoming& in = *incoming_;
    if (frame.header.command == codec::p2p::kFileChunk) {
      const uint64_t offset = body.RequireUint("offset");
      const std::string data = body.RequireString("data");
      if (offset > in.have) {
        codec::MapWriter w(3);
        w.Key("code").Int(static_cast<int>(codec::Code::kConflict));
        w.Key("error").Str("offset past the bytes held");
        w.Key("offset").Uint(in.have);
        Answer(direct_, frame, w.Finish());
        return;
      }
      if (data.size() > kP2pChunk || offset + data.size() > in.size) {
        Refuse(direct_, frame, codec::Code::kTooLarge, "chunk too long or past the size");
        return;
      }
      size_t done = 0;
      while (done < data.size()) {
        const ssize_t n = ::pwrite(in.fd.get(), data.data() + done, data.size() - done,
                                   static_cast<off_t>(offset + done));
        if (n <= 0 && errno == EINTR) continue;
        if (n <= 0) {
          Refuse(direct_, frame, codec::Code::kInternal, "cannot write " + in.part);
          return;
        }
        done += static_cast<size_t>(n);
      }
      in.have = std::max(in.have, offset + data.size());
      Answer(direct_, frame, OffsetBody(in.have));
      return;
    }
    // FILE_DONE: the size and the whole content's sha256.
    std::string digest, error;
    uint64_t hashed = 0;
    if (in.have != in.size || !Sha256OfFile(in.part, &digest, &hashed, &error, in.size) ||
        hashed != in.size || digest != in.sha256) {
      Refuse(direct_, frame, codec::Code::kMismatch, "size or sha256 differ");
      AbandonIncoming("the received bytes did not match the offer's size and sha256", true, events);
      return;
    }
    ::fsync(in.fd.get());
    in.fd.Reset();
    const std::string final_path = FreePath(receive_dir_ + "/" + in.name);
    if (::rename(in.part.c_str(), final_path.c_str()) != 0) {
      Refuse(direct_, frame, codec::Code::kInternal, "cannot rename " + in.part);
      AbandonIncoming("cannot rename the .part", false, events);
      return;
    }
    Answer(direct_, frame, codec::OkBody());
    P2pEvent e;
    e.kind = P2pEvent::Kind::kFileReceived;
    e.from = peer_;
    e.name = in.name;
    e.path = final_path;
    e.sha256 = in.sha256;
    e.size = in.size;
    e.offset = in.size;
    incoming_.reset();
    events->push_back(std::move(e));
  } catch (const codec::BadField& bad) {
    Refuse(direct_, frame, codec::Code::kBadRequest, bad.what());
  }
}

std::optional<codec::Body> P2pSession::CallDirect(uint16_t command, std::string_view body,
                                                  int* code) {
  *code = kCodeDisconnected;
  const uint32_t seq = direct_.Send(kP2p, command, body);
  if (seq == 0) return std::nullopt;
  const auto deadline = Clock::now() + options_.call_timeout;
  std::vector<P2pEvent> events;
  std::optional<codec::Body> out;
  while (Clock::now() < deadline) {
    auto frame = direct_.NextFrame(milliseconds(net::RemainingMs(deadline)));
    if (!frame) break;
    if (IsRequest(*frame)) {
      HandleDirectFrame(*frame, &events);
    } else if (frame->header.seq == seq) {
      out = ParseBody(*frame);
      try {
        *code = static_cast<int>(out->GetInt("code").value_or(kCodeBadResponse));
      } catch (const codec::BadField&) {
        *code = kCodeBadResponse;
      }
      break;
    }
  }
  if (!out) *code = direct_.closed() ? kCodeDisconnected : kCodeTimeout;
  for (P2pEvent& e : events) pending_.push_back(std::move(e));
  return out;
}

P2pFileResult P2pSession::SendFile(const std::string& path, const std::string& name, uint64_t size,
                                   const std::string& sha256, const std::string& mime,
                                   const Progress& progress) {
  P2pFileResult result;
  if (path_ != P2pPath::kDirect) {
    result.error = "no direct connection";
    return result;
  }
  net::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    result.error = "cannot open " + path + ": " + std::strerror(errno);
    return result;
  }
  // A broken or silent connection: the session falls back; the caller stores.
  auto broken = [&](const std::string& what, int code) {
    result.error = what + ": " + DescribeResult(code, "");
    if (code == kCodeDisconnected || code == kCodeTimeout) {
      std::vector<P2pEvent> events;
      FallBack("the direct connection failed during a file transfer", &events);
      for (P2pEvent& e : events) pending_.push_back(std::move(e));
    }
    return result;
  };
  int code = 0;
  {
    codec::MapWriter w(4);
    w.Key("name").Str(name);
    w.Key("size").Uint(size);
    w.Key("sha256");
    PackBin(w, sha256);
    w.Key("mime").Str(mime.empty() ? "application/octet-stream" : mime);
    auto answer = CallDirect(codec::p2p::kFileOffer, w.Finish(), &code);
    if (!answer || code != 0) return broken("FILE_OFFER", code);
    result.offset = std::min(answer->GetUint("offset").value_or(0), size);
  }
  std::string buf;
  while (result.offset < size) {
    buf.resize(static_cast<size_t>(std::min<uint64_t>(kP2pChunk, size - result.offset)));
    const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(result.offset));
    if (n != static_cast<ssize_t>(buf.size())) {
      result.error = "cannot read " + path + " (did it change?)";
      return result;
    }
    codec::MapWriter w(2);
    w.Key("offset").Uint(result.offset);
    w.Key("data");
    PackBin(w, buf);
    auto answer = CallDirect(codec::p2p::kFileChunk, w.Finish(), &code);
    if (!answer || (code != 0 && code != static_cast<int>(codec::Code::kConflict))) {
      return broken("FILE_CHUNK", code);
    }
    uint64_t next = 0;
    try {
      next = answer->GetUint("offset").value_or(0);
    } catch (const codec::BadField&) {
      return broken("FILE_CHUNK", kCodeBadResponse);
    }
    if (code == 0 && next <= result.offset && !buf.empty())
      return broken("FILE_CHUNK", kCodeBadResponse);
    result.offset = std::min(next, size);
    if (progress) progress(result.offset, size);
  }
  auto answer = CallDirect(codec::p2p::kFileDone, codec::EmptyBody(), &code);
  if (!answer || code != 0) return broken("FILE_DONE", code);
  if (progress) progress(size, size);
  result.done = true;
  return result;
}

Result<FileSendOutcome> SendFileDirectOrStored(P2pSession& p2p, Client& client, uint64_t peer,
                                               const std::string& path,
                                               const TransferOptions& options) {
  Result<FileSendOutcome> out;
  std::string sha, error;
  uint64_t size = 0;
  if (!Sha256OfFile(path, &sha, &size, &error)) {
    out.code = kCodeLocal;
    out.error = error;
    return out;
  }
  const std::string name = options.name.empty() ? BaseName(path) : options.name;
  const std::string mime = options.mime.empty() ? GuessMime(name) : options.mime;
  if (p2p.peer() != peer || p2p.path() != P2pPath::kDirect) p2p.Start(peer);
  if (p2p.path() == P2pPath::kDirect) {
    P2pFileResult direct = p2p.SendFile(path, name, size, sha, mime, options.progress);
    out.value.direct_bytes = direct.offset;
    if (direct.done) {
      out.code = 0;
      out.value.via = P2pPath::kDirect;
      return out;
    }
    out.value.direct_error = direct.error;
  } else {
    out.value.direct_error = "no direct connection could be made";
  }
  Result<FileInfo> stored = UploadFile(client, path, options);
  if (!stored.ok()) {
    out.code = stored.code;
    out.error = "upload: " + stored.error;
    return out;
  }
  out.value.stored = stored.value;
  const std::string cmid = NewCmid();
  Result<SentMessage> sent;
  for (int attempt = 0; attempt < 3; ++attempt) {
    sent = SendFileToUser(client, peer, cmid, stored.value.file);
    if (sent.ok() ||
        (sent.code != kCodeDisconnected && sent.code != kCodeTimeout &&
         sent.code != static_cast<int>(codec::Code::kUnavailable)) ||
        !options.reconnect || !options.reconnect()) {
      break;
    }
  }
  if (!sent.ok()) {
    out.code = sent.code;
    out.error = "send: " + sent.error;
    return out;
  }
  out.value.message = sent.value;
  out.value.via = P2pPath::kRelayed;
  out.code = 0;
  return out;
}

}  // namespace imbus::client

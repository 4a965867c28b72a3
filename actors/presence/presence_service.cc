#include "actors/presence/presence_service.h"

#include <sodium.h>

#include <stdexcept>

#include "codec/commands.h"
#include "codec/utf8.h"

namespace imbus::actors {
namespace {

using codec::Code;

constexpr const char* kKindPublic = "public";
constexpr const char* kKindLocal = "local";
constexpr const char* kDefaultDevice = "default";

struct Addr {
  std::string host;
  uint16_t port = 0;
  const char* kind = kKindPublic;
};

std::vector<Addr> AddrsOf(const codec::SessionInfo& s) {
  std::vector<Addr> out;
  if (!s.public_host.empty() && s.public_port != 0) {
    out.push_back({s.public_host, s.public_port, kKindPublic});
  }
  // local_host is whatever the client declared at LOGIN; it goes out as a msgpack
  // str to other clients, whose decoders may refuse bytes that are not UTF-8.
  if (!s.local_host.empty() && s.p2p_port != 0 && codec::IsValidUtf8(s.local_host)) {
    out.push_back({s.local_host, s.p2p_port, kKindLocal});
  }
  return out;
}

void WriteAddrs(codec::MapWriter& w, const std::vector<Addr>& addrs) {
  w.packer().pack_array(static_cast<uint32_t>(addrs.size()));
  for (const Addr& a : addrs) {
    w.packer().pack_map(3);
    w.Key("host").Str(a.host);
    w.Key("port").Uint(a.port);
    w.Key("kind").Str(a.kind);
  }
}

uint64_t RequirePositive(const codec::Body& body, std::string_view key) {
  const uint64_t v = body.RequireUint(key);
  if (v == 0) {
    throw RequestError(Code::kBadRequest, "field '" + std::string(key) + "' must be positive");
  }
  return v;
}

}  // namespace

std::string NewTicket() {
  unsigned char bytes[PresenceService::kTicketBytes];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return std::string(hex, 2 * sizeof bytes);
}

PresenceService::PresenceService(std::unique_ptr<DirectoryStore> store, Sessions* sessions,
                                 Options options)
    : store_(std::move(store)), sessions_(sessions), options_(options) {
  // Idempotent and thread-safe; the actor host has usually done it already.
  if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
  Handles(codec::presence::kIsOnline, &PresenceService::IsOnline);
  Handles(codec::presence::kPeerAddr, &PresenceService::PeerAddr);
  Handles(codec::presence::kSessionEvent, &PresenceService::SessionEvent);
}

void PresenceService::RequireUser(uint64_t uid) {
  if (!store_->FindUser(uid)) throw RequestError(Code::kNotFound, "no such user");
}

bool PresenceService::MaySee(uint64_t caller, uint64_t uid) {
  if (caller == uid) return true;
  if (!options_.immediate_friends) {
    if (store_->AreFriends(caller, uid)) return true;
    RequireUser(uid);
    throw RequestError(Code::kForbidden, "not a friend");
  }
  return store_->BlockersOf(caller, {uid}).empty();
}

void PresenceService::IsOnline(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  const bool visible = MaySee(req.meta.uid, uid);
  const bool online = visible && sessions_->Online({uid}).at(0);
  if (!online) RequireUser(uid);  // a live session implies a live user
  OkWriter w(1);
  w.Key("online").Bool(online);
  reply->body = w.Finish();
}

void PresenceService::PeerAddr(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "cannot ask for your own address");
  const bool visible = MaySee(req.meta.uid, uid);
  // One lookup for both: the target's sessions and the caller's own.
  std::vector<codec::UserSessions> found = sessions_->Lookup({uid, req.meta.uid});
  if (!visible) found.at(0).sessions.clear();  // blocked: as if offline
  const std::vector<codec::SessionInfo>& target = found.at(0).sessions;
  if (target.empty()) {
    RequireUser(uid);
    OkWriter w(3);
    w.Key("online").Bool(false);
    w.Key("addrs").packer().pack_array(0);
    w.Key("ticket").Str("");
    reply->body = w.Finish();
    return;
  }
  // The broker lists sessions in the order they logged in: the last is the newest.
  const std::vector<Addr> target_addrs = AddrsOf(target.back());
  std::vector<Addr> caller_addrs;
  const std::string device = req.meta.device.empty() ? kDefaultDevice : req.meta.device;
  for (const codec::SessionInfo& s : found.at(1).sessions) {
    if (s.device == device) caller_addrs = AddrsOf(s);
  }
  const std::string ticket = NewTicket();

  Push push;
  push.meta.uids = {uid};
  push.meta.service = codec::ToWire(codec::Service::kPresence);
  push.meta.command = codec::presence::kP2pIncoming;
  codec::MapWriter p(3);
  p.Key("uid").Uint(req.meta.uid);
  p.Key("addrs");
  WriteAddrs(p, caller_addrs);
  p.Key("ticket").Str(ticket);
  push.body = p.Finish();
  reply->pushes.push_back(std::move(push));

  OkWriter w(3);
  w.Key("online").Bool(true);
  w.Key("addrs");
  WriteAddrs(w, target_addrs);
  w.Key("ticket").Str(ticket);
  reply->body = w.Finish();
}

void PresenceService::SessionEvent(const Request& req, Reply* reply) {
  // From the broker only: the edge never forwards this command (not in the client
  // table), and a forwarded one would carry a connection.
  if (req.meta.conn != 0) throw RequestError(Code::kUnsupported, "internal command");
  const uint64_t uid = req.body.GetUint("uid").value_or(req.meta.uid);
  const bool online = req.body.GetBool("online").value_or(false);
  if (uid == 0) throw RequestError(Code::kBadRequest, "field 'uid' is required");
  std::vector<uint64_t> friends;
  for (const DirectoryUser& f : store_->Friends(uid, 0, kAllRows)) friends.push_back(f.uid);
  if (!friends.empty()) {
    Push push;
    push.meta.uids = std::move(friends);  // the broker delivers to the online ones
    push.meta.service = codec::ToWire(codec::Service::kPresence);
    push.meta.command = codec::presence::kStatus;
    codec::MapWriter p(2);
    p.Key("uid").Uint(uid);
    p.Key("online").Bool(online);
    push.body = p.Finish();
    reply->pushes.push_back(std::move(push));
  }
  reply->body = OkWriter(0).Finish();
}

}  // namespace imbus::actors

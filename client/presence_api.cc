#include "client/presence_api.h"

#include "client/directory_api.h"
#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client {
namespace {

constexpr uint16_t kPresence = codec::ToWire(codec::Service::kPresence);

std::vector<PeerAddress> AddrsIn(const std::vector<const msgpack::object*>& list) {
  std::vector<PeerAddress> out;
  for (const msgpack::object* a : list) {
    const uint64_t port = codec::UintIn(*a, "port");
    if (port > 65535) throw codec::BadField("port out of range");
    out.push_back(PeerAddress{codec::StringIn(*a, "host"), static_cast<uint16_t>(port),
                              codec::StringIn(*a, "kind")});
  }
  return out;
}

std::string UidBody(uint64_t uid) {
  codec::MapWriter w(1);
  w.Key("uid").Uint(uid);
  return w.Finish();
}

}  // namespace

Result<bool> IsOnline(Client& c, uint64_t uid) {
  return wire::Typed<bool>(c.Call(kPresence, codec::presence::kIsOnline, UidBody(uid)),
                           [](const codec::Body& b) { return codec::BoolIn(b.root(), "online"); });
}

Result<PeerInfo> PeerAddr(Client& c, uint64_t uid) {
  return wire::Typed<PeerInfo>(c.Call(kPresence, codec::presence::kPeerAddr, UidBody(uid)),
                               [](const codec::Body& b) {
                                 PeerInfo info;
                                 info.online = codec::BoolIn(b.root(), "online");
                                 info.addrs = AddrsIn(codec::ArrayOf(b, "addrs"));
                                 info.ticket = b.GetString("ticket").value_or("");
                                 return info;
                               });
}

std::optional<StatusEvent> ParseStatus(const Push& push) {
  if (push.service != kPresence || push.command != codec::presence::kStatus) return std::nullopt;
  try {
    return StatusEvent{codec::UintIn(push.body.root(), "uid"),
                       codec::BoolIn(push.body.root(), "online")};
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

std::optional<P2pIncoming> ParseP2pIncoming(const Push& push) {
  if (push.service != kPresence || push.command != codec::presence::kP2pIncoming) {
    return std::nullopt;
  }
  try {
    P2pIncoming in;
    in.uid = codec::UintIn(push.body.root(), "uid");
    in.addrs = AddrsIn(codec::ArrayIn(push.body.root(), "addrs"));
    in.ticket = codec::StringIn(push.body.root(), "ticket");
    return in;
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

}  // namespace imbus::client

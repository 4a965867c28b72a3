// Public. Typed calls for the PRESENCE service (PROTOCOL.md service 4) over a
// logged-in Client, and parsers for its pushes (STATUS, P2P_INCOMING) as they come
// out of Connection::WaitPush. Same threading as Client: the caller's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"

namespace imbus::client {

struct PeerAddress {
  std::string host;
  uint16_t port = 0;
  std::string kind;  // "public" (as the edge saw it) or "local" (as the peer said)
};

struct PeerInfo {
  bool online = false;
  std::vector<PeerAddress> addrs;
  std::string ticket;  // empty when offline
};

// STATUS push: a friend came or went.
struct StatusEvent {
  uint64_t uid = 0;
  bool online = false;
};

// P2P_INCOMING push: `uid` asked for our address and is dialing us.
struct P2pIncoming {
  uint64_t uid = 0;
  std::vector<PeerAddress> addrs;
  std::string ticket;
};

Result<bool> IsOnline(Client& c, uint64_t uid);
// Also makes the server push P2P_INCOMING (with our addresses) to the target.
Result<PeerInfo> PeerAddr(Client& c, uint64_t uid);

// nullopt when the push is not that command or its body is malformed.
std::optional<StatusEvent> ParseStatus(const Push& push);
std::optional<P2pIncoming> ParseP2pIncoming(const Push& push);

}  // namespace imbus::client

// Public. The services and commands of PROTOCOL.md, declared once. The edge uses the
// table to answer UNSUPPORTED / UNAUTHENTICATED itself, actors to dispatch, the
// client and tests to build requests: no command number appears anywhere else.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace imbus::codec {

enum class Service : uint16_t {
  kSys = 1,
  kAuth = 2,
  kDirectory = 3,
  kPresence = 4,
  kMsg = 5,
  kP2p = 6,
  kPush = 7,
  kFile = 8,
};

namespace sys {
enum Command : uint16_t {
  kPing = 1,
  kRoute = 2,
  kHello = 3,
  // Pushes from the operator (imbus-ctl): a system message; "reconnect elsewhere".
  kNotice = 100,
  kReconnect = 101,
  kError = 65535
};
}
namespace auth {
enum Command : uint16_t {
  kRegister = 1,
  kLogin = 2,
  kResume = 3,
  kLogout = 4,
  kDeleteAccount = 5,
  kKicked = 100,
};
}
namespace directory {
enum Command : uint16_t {
  kListUsers = 1,
  kGetUser = 2,
  kAddFriend = 3,
  kRemoveFriend = 4,
  kListFriends = 5,
  kCreateGroup = 6,
  kJoinGroup = 7,
  kLeaveGroup = 8,
  kListGroups = 9,
  kGroupMembers = 10,
  // Consent (issue 18): friend requests and blocks.
  kFriendRequests = 20,
  kAcceptFriend = 21,
  kDeclineFriend = 22,
  kBlock = 23,
  kUnblock = 24,
  kListBlocked = 25,
  // Groups with roles and join policies (issue 18).
  kSetGroup = 30,
  kInvite = 31,
  kApprove = 32,
  kReject = 33,
  kRemoveMember = 34,
  kSetRole = 35,
  kTransferOwner = 36,
  kDissolve = 37,
  kGroupPending = 38,
  kFriendEvent = 100,  // push
  kGroupEvent = 101,   // push
};
}
namespace presence {
enum Command : uint16_t {
  kIsOnline = 1,
  kPeerAddr = 2,
  kStatus = 100,
  kP2pIncoming = 101,
  // Internal: the broker tells a presence worker that a user's first session came
  // or last one went, body {uid, online}. Never accepted from a client.
  kSessionEvent = 1000,
};
}
namespace msg {
enum Command : uint16_t {
  kSend = 1,
  kAck = 2,
  kSync = 3,
  kHistory = 4,
  kConversations = 5,
  // Chat features (issue 18).
  kTyping = 10,
  kRecall = 11,
  kEdit = 12,
  kDelete = 13,
  kSetPrefs = 14,
  kMessage = 100,
  kRead = 101,          // push: a read receipt
  kTypingNotice = 102,  // push
  kUpdated = 103,       // push: a message recalled or edited
  kDeleted = 104,       // push: deleted from the user's own view
};
}
namespace p2p {
enum Command : uint16_t {
  kHello = 1,
  kText = 2,
  kBye = 3,
  // A file sent directly (issue 19).
  kFileOffer = 4,
  kFileChunk = 5,
  kFileDone = 6,
};
}
// Offline push notifications (device tokens, the preview setting).
namespace push {
enum Command : uint16_t { kRegisterDevice = 1, kUnregisterDevice = 2, kSettings = 3 };
}
// Files: chunked, resumable uploads and downloads (issue 19).
namespace file {
enum Command : uint16_t {
  kUploadStart = 1,
  kUploadChunk = 2,
  kUploadFinish = 3,
  kUploadCancel = 4,
  kFileInfo = 5,
  kDownload = 6,
};
}

enum class Kind : uint8_t {
  kRequest,     // a client may send it
  kPush,        // server to client only
  kServerOnly,  // SYS/ERROR
};

// Which limit a request counts against besides the per-connection request rate
// (docs/configuration.md): the edge's and the broker's message rates, or the edge's
// per-address login backoff.
enum class RateClass : uint8_t {
  kOrdinary,
  kSend,         // a message sent: --conn-send-rate (edge), --user-send-rate (broker)
  kCredentials,  // checks a password or a token: the login backoff (edge)
  kFileBytes,    // carries or asks for file bytes: --file-rate, the edge's byte budget
};

struct CommandInfo {
  Service service;
  uint16_t command;
  const char* name;  // "AUTH/LOGIN"
  Kind kind;
  bool needs_login;  // answered UNAUTHENTICATED before login (edge and actors)
  RateClass rate = RateClass::kOrdinary;
};

// The entry for (service, command), or nullptr when the protocol has no such command.
const CommandInfo* FindCommand(uint16_t service, uint16_t command);

// "sys", "auth", "directory", "presence", "msg", "p2p", "push"; nullptr when unknown.
const char* ServiceName(uint16_t service);
std::optional<Service> ServiceByName(std::string_view name);

inline constexpr uint16_t ToWire(Service s) { return static_cast<uint16_t>(s); }

}  // namespace imbus::codec

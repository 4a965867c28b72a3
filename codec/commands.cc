#include "codec/commands.h"

namespace imbus::codec {

namespace {

constexpr CommandInfo kCommands[] = {
    {Service::kSys, sys::kPing, "SYS/PING", Kind::kRequest, false},
    {Service::kSys, sys::kRoute, "SYS/ROUTE", Kind::kRequest, false},
    {Service::kSys, sys::kHello, "SYS/HELLO", Kind::kRequest, false},
    {Service::kSys, sys::kNotice, "SYS/NOTICE", Kind::kPush, false},
    {Service::kSys, sys::kReconnect, "SYS/RECONNECT", Kind::kPush, false},
    {Service::kSys, sys::kError, "SYS/ERROR", Kind::kServerOnly, false},

    {Service::kAuth, auth::kRegister, "AUTH/REGISTER", Kind::kRequest, false},
    {Service::kAuth, auth::kLogin, "AUTH/LOGIN", Kind::kRequest, false, RateClass::kCredentials},
    {Service::kAuth, auth::kResume, "AUTH/RESUME", Kind::kRequest, false, RateClass::kCredentials},
    {Service::kAuth, auth::kLogout, "AUTH/LOGOUT", Kind::kRequest, true},
    {Service::kAuth, auth::kDeleteAccount, "AUTH/DELETE_ACCOUNT", Kind::kRequest, false,
     RateClass::kCredentials},
    {Service::kAuth, auth::kKicked, "AUTH/KICKED", Kind::kPush, false},

    {Service::kDirectory, directory::kListUsers, "DIRECTORY/LIST_USERS", Kind::kRequest, true},
    {Service::kDirectory, directory::kGetUser, "DIRECTORY/GET_USER", Kind::kRequest, true},
    {Service::kDirectory, directory::kAddFriend, "DIRECTORY/ADD_FRIEND", Kind::kRequest, true},
    {Service::kDirectory, directory::kRemoveFriend, "DIRECTORY/REMOVE_FRIEND", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kListFriends, "DIRECTORY/LIST_FRIENDS", Kind::kRequest, true},
    {Service::kDirectory, directory::kCreateGroup, "DIRECTORY/CREATE_GROUP", Kind::kRequest, true},
    {Service::kDirectory, directory::kJoinGroup, "DIRECTORY/JOIN_GROUP", Kind::kRequest, true},
    {Service::kDirectory, directory::kLeaveGroup, "DIRECTORY/LEAVE_GROUP", Kind::kRequest, true},
    {Service::kDirectory, directory::kListGroups, "DIRECTORY/LIST_GROUPS", Kind::kRequest, true},
    {Service::kDirectory, directory::kGroupMembers, "DIRECTORY/GROUP_MEMBERS", Kind::kRequest,
     true},
    // Issue 18: consent and groups with roles.
    {Service::kDirectory, directory::kFriendRequests, "DIRECTORY/FRIEND_REQUESTS", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kAcceptFriend, "DIRECTORY/ACCEPT_FRIEND", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kDeclineFriend, "DIRECTORY/DECLINE_FRIEND", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kBlock, "DIRECTORY/BLOCK", Kind::kRequest, true},
    {Service::kDirectory, directory::kUnblock, "DIRECTORY/UNBLOCK", Kind::kRequest, true},
    {Service::kDirectory, directory::kListBlocked, "DIRECTORY/LIST_BLOCKED", Kind::kRequest, true},
    {Service::kDirectory, directory::kSetGroup, "DIRECTORY/SET_GROUP", Kind::kRequest, true},
    {Service::kDirectory, directory::kInvite, "DIRECTORY/INVITE", Kind::kRequest, true},
    {Service::kDirectory, directory::kApprove, "DIRECTORY/APPROVE", Kind::kRequest, true},
    {Service::kDirectory, directory::kReject, "DIRECTORY/REJECT", Kind::kRequest, true},
    {Service::kDirectory, directory::kRemoveMember, "DIRECTORY/REMOVE_MEMBER", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kSetRole, "DIRECTORY/SET_ROLE", Kind::kRequest, true},
    {Service::kDirectory, directory::kTransferOwner, "DIRECTORY/TRANSFER_OWNER", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kDissolve, "DIRECTORY/DISSOLVE", Kind::kRequest, true},
    {Service::kDirectory, directory::kGroupPending, "DIRECTORY/GROUP_PENDING", Kind::kRequest,
     true},
    {Service::kDirectory, directory::kFriendEvent, "DIRECTORY/FRIEND_EVENT", Kind::kPush, true},
    {Service::kDirectory, directory::kGroupEvent, "DIRECTORY/GROUP_EVENT", Kind::kPush, true},

    {Service::kPresence, presence::kIsOnline, "PRESENCE/IS_ONLINE", Kind::kRequest, true},
    {Service::kPresence, presence::kPeerAddr, "PRESENCE/PEER_ADDR", Kind::kRequest, true},
    {Service::kPresence, presence::kStatus, "PRESENCE/STATUS", Kind::kPush, true},
    {Service::kPresence, presence::kP2pIncoming, "PRESENCE/P2P_INCOMING", Kind::kPush, true},
    {Service::kPresence, presence::kSessionEvent, "PRESENCE/SESSION_EVENT", Kind::kServerOnly,
     false},

    {Service::kMsg, msg::kSend, "MSG/SEND", Kind::kRequest, true, RateClass::kSend},
    {Service::kMsg, msg::kAck, "MSG/ACK", Kind::kRequest, true},
    {Service::kMsg, msg::kSync, "MSG/SYNC", Kind::kRequest, true},
    {Service::kMsg, msg::kHistory, "MSG/HISTORY", Kind::kRequest, true},
    {Service::kMsg, msg::kConversations, "MSG/CONVERSATIONS", Kind::kRequest, true},
    {Service::kMsg, msg::kMessage, "MSG/MESSAGE", Kind::kPush, true},
    // Issue 18: receipts, typing, recall/edit/delete, settings.
    {Service::kMsg, msg::kTyping, "MSG/TYPING", Kind::kRequest, true},
    {Service::kMsg, msg::kRecall, "MSG/RECALL", Kind::kRequest, true},
    {Service::kMsg, msg::kEdit, "MSG/EDIT", Kind::kRequest, true},
    {Service::kMsg, msg::kDelete, "MSG/DELETE", Kind::kRequest, true},
    {Service::kMsg, msg::kSetPrefs, "MSG/SET_PREFS", Kind::kRequest, true},
    {Service::kMsg, msg::kRead, "MSG/READ", Kind::kPush, true},
    {Service::kMsg, msg::kTypingNotice, "MSG/TYPING_NOTICE", Kind::kPush, true},
    {Service::kMsg, msg::kUpdated, "MSG/UPDATED", Kind::kPush, true},
    {Service::kMsg, msg::kDeleted, "MSG/DELETED", Kind::kPush, true},

    // P2P frames travel between two clients, never through an edge.
    {Service::kP2p, p2p::kHello, "P2P/HELLO", Kind::kRequest, false},
    {Service::kP2p, p2p::kText, "P2P/TEXT", Kind::kRequest, false},
    {Service::kP2p, p2p::kBye, "P2P/BYE", Kind::kRequest, false},
    {Service::kP2p, p2p::kFileOffer, "P2P/FILE_OFFER", Kind::kRequest, false},
    {Service::kP2p, p2p::kFileChunk, "P2P/FILE_CHUNK", Kind::kRequest, false},
    {Service::kP2p, p2p::kFileDone, "P2P/FILE_DONE", Kind::kRequest, false},

    {Service::kPush, push::kRegisterDevice, "PUSH/REGISTER_DEVICE", Kind::kRequest, true},
    {Service::kPush, push::kUnregisterDevice, "PUSH/UNREGISTER_DEVICE", Kind::kRequest, true},
    {Service::kPush, push::kSettings, "PUSH/SETTINGS", Kind::kRequest, true},

    {Service::kFile, file::kUploadStart, "FILE/UPLOAD_START", Kind::kRequest, true},
    {Service::kFile, file::kUploadChunk, "FILE/UPLOAD_CHUNK", Kind::kRequest, true,
     RateClass::kFileBytes},
    {Service::kFile, file::kUploadFinish, "FILE/UPLOAD_FINISH", Kind::kRequest, true},
    {Service::kFile, file::kUploadCancel, "FILE/UPLOAD_CANCEL", Kind::kRequest, true},
    {Service::kFile, file::kFileInfo, "FILE/FILE_INFO", Kind::kRequest, true},
    {Service::kFile, file::kDownload, "FILE/DOWNLOAD", Kind::kRequest, true, RateClass::kFileBytes},
};

struct ServiceNameEntry {
  Service service;
  const char* name;
};
constexpr ServiceNameEntry kServiceNames[] = {
    {Service::kSys, "sys"},           {Service::kAuth, "auth"}, {Service::kDirectory, "directory"},
    {Service::kPresence, "presence"}, {Service::kMsg, "msg"},   {Service::kP2p, "p2p"},
    {Service::kPush, "push"},         {Service::kFile, "file"},
};

}  // namespace

const CommandInfo* FindCommand(uint16_t service, uint16_t command) {
  for (const CommandInfo& info : kCommands) {
    if (ToWire(info.service) == service && info.command == command) return &info;
  }
  return nullptr;
}

const char* ServiceName(uint16_t service) {
  for (const auto& e : kServiceNames) {
    if (ToWire(e.service) == service) return e.name;
  }
  return nullptr;
}

std::optional<Service> ServiceByName(std::string_view name) {
  for (const auto& e : kServiceNames) {
    if (name == e.name) return e.service;
  }
  return std::nullopt;
}

}  // namespace imbus::codec

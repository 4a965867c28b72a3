// Public. Typed calls for the DIRECTORY service (PROTOCOL.md service 3) over a
// logged-in Client: users, friends, groups. Each blocks until the response or the
// client's timeout and returns a Result (code 0 = OK, else the server's code and
// error, or a negative local code). Same threading as Client: the caller's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "client/wire.h"

namespace imbus::client {

struct UserInfo {
  uint64_t uid = 0;
  std::string name;
  bool online = false;
};

struct UserPage {
  uint64_t total = 0;  // live users in all
  uint64_t page = 0;
  std::vector<UserInfo> users;  // ordered by uid
};

struct GroupInfo {
  uint64_t gid = 0;
  std::string name;
  std::string desc;
  std::string role;  // "owner" or "member"
};

struct MemberInfo {
  uint64_t uid = 0;
  std::string name;
  std::string role;
  bool online = false;
};

// page >= 1, size 1..100 (the server answers BAD_REQUEST otherwise).
Result<UserPage> ListUsers(Client& c, uint64_t page = 1, uint64_t size = 20);
Result<UserInfo> GetUser(Client& c, uint64_t uid);
Result<UserInfo> GetUserByName(Client& c, std::string_view name);
Result<Empty> AddFriend(Client& c, uint64_t uid);
Result<Empty> RemoveFriend(Client& c, uint64_t uid);
Result<std::vector<UserInfo>> ListFriends(Client& c);
// `desc` empty: omitted.
Result<uint64_t> CreateGroup(Client& c, std::string_view name, std::string_view desc = {});
Result<Empty> JoinGroup(Client& c, uint64_t gid);
Result<Empty> LeaveGroup(Client& c, uint64_t gid);
Result<std::vector<GroupInfo>> ListGroups(Client& c);
Result<std::vector<MemberInfo>> GroupMembers(Client& c, uint64_t gid);

// Consent (issue 18). ADD_FRIEND's answer: true when it left a pending request
// (false: friends now).
struct FriendRequestInfo {
  uint64_t uid = 0;  // the other user
  std::string name;
  int64_t ts = 0;  // when it was made, ms
};
Result<bool> RequestFriend(Client& c, uint64_t uid);
Result<Empty> AcceptFriend(Client& c, uint64_t uid);
Result<Empty> DeclineFriend(Client& c, uint64_t uid);
// incoming: requests to me; else the ones I made. All pages.
Result<std::vector<FriendRequestInfo>> FriendRequests(Client& c, bool incoming = true);
Result<Empty> Block(Client& c, uint64_t uid);
Result<Empty> Unblock(Client& c, uint64_t uid);
Result<std::vector<UserInfo>> ListBlocked(Client& c);  // online is always false

// Groups with roles and join policies (issue 18). JoinGroupAsk's value: true when
// it left a join request (a "request" group).
struct PendingJoinInfo {
  uint64_t uid = 0;
  std::string name;
  std::string kind;  // "request" or "invite"
  uint64_t by = 0;
};
struct GroupSettingsInfo {
  std::string policy;  // "open", "request", "invite"
  bool muted = false;
};
Result<uint64_t> CreateGroupWithPolicy(Client& c, std::string_view name, std::string_view desc,
                                       std::string_view policy);
Result<bool> JoinGroupAsk(Client& c, uint64_t gid);
// Empty policy / no muted: unchanged (then it only reads them).
Result<GroupSettingsInfo> SetGroup(Client& c, uint64_t gid, std::string_view policy,
                                   std::optional<bool> muted);
Result<bool> Invite(Client& c, uint64_t gid, uint64_t uid);
Result<Empty> Approve(Client& c, uint64_t gid, uint64_t uid);
Result<Empty> Reject(Client& c, uint64_t gid, uint64_t uid);
Result<Empty> RemoveMember(Client& c, uint64_t gid, uint64_t uid);
Result<Empty> SetRole(Client& c, uint64_t gid, uint64_t uid, std::string_view role);
Result<Empty> TransferOwner(Client& c, uint64_t gid, uint64_t uid);
Result<Empty> Dissolve(Client& c, uint64_t gid);
Result<std::vector<PendingJoinInfo>> GroupPending(Client& c, uint64_t gid);

}  // namespace imbus::client

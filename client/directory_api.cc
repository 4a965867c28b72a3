#include "client/directory_api.h"

#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client {

namespace {

using codec::BoolIn;
using codec::StringIn;
using codec::UintIn;

constexpr uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);

Empty NoValue(const codec::Body&) { return {}; }

UserInfo ToUser(const msgpack::object& o) {
  return UserInfo{UintIn(o, "uid"), StringIn(o, "name"), BoolIn(o, "online")};
}

std::string UintBody(std::string_view key, uint64_t v) {
  codec::MapWriter w(1);
  w.Key(key).Uint(v);
  return w.Finish();
}

// A list request for the largest page (fewest round trips): `key`: `value` when
// `key` is not empty, and `after` when given.
std::string AfterBody(std::string_view key, uint64_t value, const std::optional<uint64_t>& after) {
  codec::MapWriter w((key.empty() ? 1 : 2) + (after ? 1 : 0));
  if (!key.empty()) w.Key(key).Uint(value);
  w.Key("limit").Uint(wire::kMaxListLimit);
  if (after) w.Key("after").Uint(*after);
  return w.Finish();
}

}  // namespace

Result<UserPage> ListUsers(Client& c, uint64_t page, uint64_t size) {
  codec::MapWriter w(2);
  w.Key("page").Uint(page);
  w.Key("size").Uint(size);
  return wire::Typed<UserPage>(c.Call(kDirectory, codec::directory::kListUsers, w.Finish()),
                               [](const codec::Body& b) {
                                 UserPage p;
                                 p.total = b.RequireUint("total");
                                 p.page = b.RequireUint("page");
                                 for (const msgpack::object* u : codec::ArrayOf(b, "users"))
                                   p.users.push_back(ToUser(*u));
                                 return p;
                               });
}

Result<UserInfo> GetUser(Client& c, uint64_t uid) {
  return wire::Typed<UserInfo>(c.Call(kDirectory, codec::directory::kGetUser, UintBody("uid", uid)),
                               [](const codec::Body& b) { return ToUser(b.root()); });
}

Result<UserInfo> GetUserByName(Client& c, std::string_view name) {
  codec::MapWriter w(1);
  w.Key("name").Str(name);
  return wire::Typed<UserInfo>(c.Call(kDirectory, codec::directory::kGetUser, w.Finish()),
                               [](const codec::Body& b) { return ToUser(b.root()); });
}

Result<Empty> AddFriend(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kAddFriend, UintBody("uid", uid)),
                            NoValue);
}

Result<Empty> RemoveFriend(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(
      c.Call(kDirectory, codec::directory::kRemoveFriend, UintBody("uid", uid)), NoValue);
}

Result<std::vector<UserInfo>> ListFriends(Client& c) {
  return wire::AllPages<UserInfo, uint64_t>(
      [&c](const std::optional<uint64_t>& after) {
        return c.Call(kDirectory, codec::directory::kListFriends, AfterBody({}, 0, after));
      },
      "friends", ToUser, [](const UserInfo& u) { return u.uid; });
}

Result<uint64_t> CreateGroup(Client& c, std::string_view name, std::string_view desc) {
  codec::MapWriter w(desc.empty() ? 1 : 2);
  w.Key("name").Str(name);
  if (!desc.empty()) w.Key("desc").Str(desc);
  return wire::Typed<uint64_t>(c.Call(kDirectory, codec::directory::kCreateGroup, w.Finish()),
                               [](const codec::Body& b) { return b.RequireUint("gid"); });
}

Result<Empty> JoinGroup(Client& c, uint64_t gid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kJoinGroup, UintBody("gid", gid)),
                            NoValue);
}

Result<Empty> LeaveGroup(Client& c, uint64_t gid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kLeaveGroup, UintBody("gid", gid)),
                            NoValue);
}

Result<std::vector<GroupInfo>> ListGroups(Client& c) {
  return wire::AllPages<GroupInfo, uint64_t>(
      [&c](const std::optional<uint64_t>& after) {
        return c.Call(kDirectory, codec::directory::kListGroups, AfterBody({}, 0, after));
      },
      "groups",
      [](const msgpack::object& g) {
        return GroupInfo{UintIn(g, "gid"), StringIn(g, "name"), StringIn(g, "desc"),
                         StringIn(g, "role")};
      },
      [](const GroupInfo& g) { return g.gid; });
}

Result<std::vector<MemberInfo>> GroupMembers(Client& c, uint64_t gid) {
  return wire::AllPages<MemberInfo, uint64_t>(
      [&c, gid](const std::optional<uint64_t>& after) {
        return c.Call(kDirectory, codec::directory::kGroupMembers, AfterBody("gid", gid, after));
      },
      "members",
      [](const msgpack::object& m) {
        return MemberInfo{UintIn(m, "uid"), StringIn(m, "name"), StringIn(m, "role"),
                          BoolIn(m, "online")};
      },
      [](const MemberInfo& m) { return m.uid; });
}

Result<bool> RequestFriend(Client& c, uint64_t uid) {
  return wire::Typed<bool>(
      c.Call(kDirectory, codec::directory::kAddFriend, UintBody("uid", uid)),
      [](const codec::Body& b) { return b.GetBool("pending").value_or(false); });
}

Result<Empty> AcceptFriend(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(
      c.Call(kDirectory, codec::directory::kAcceptFriend, UintBody("uid", uid)), NoValue);
}

Result<Empty> DeclineFriend(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(
      c.Call(kDirectory, codec::directory::kDeclineFriend, UintBody("uid", uid)), NoValue);
}

Result<std::vector<FriendRequestInfo>> FriendRequests(Client& c, bool incoming) {
  return wire::AllPages<FriendRequestInfo, uint64_t>(
      [&c, incoming](const std::optional<uint64_t>& after) {
        codec::MapWriter w(after ? 3 : 2);
        w.Key("incoming").Bool(incoming);
        w.Key("limit").Uint(wire::kMaxListLimit);
        if (after) w.Key("after").Uint(*after);
        return c.Call(kDirectory, codec::directory::kFriendRequests, w.Finish());
      },
      "requests",
      [](const msgpack::object& o) {
        return FriendRequestInfo{UintIn(o, "uid"), StringIn(o, "name"), codec::IntIn(o, "ts")};
      },
      [](const FriendRequestInfo& r) { return r.uid; });
}

Result<Empty> Block(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kBlock, UintBody("uid", uid)),
                            NoValue);
}

Result<Empty> Unblock(Client& c, uint64_t uid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kUnblock, UintBody("uid", uid)),
                            NoValue);
}

Result<std::vector<UserInfo>> ListBlocked(Client& c) {
  return wire::AllPages<UserInfo, uint64_t>(
      [&c](const std::optional<uint64_t>& after) {
        return c.Call(kDirectory, codec::directory::kListBlocked, AfterBody({}, 0, after));
      },
      "users",
      [](const msgpack::object& o) {
        return UserInfo{UintIn(o, "uid"), StringIn(o, "name"), false};
      },
      [](const UserInfo& u) { return u.uid; });
}

namespace {

std::string GidUid(uint64_t gid, uint64_t uid) {
  codec::MapWriter w(2);
  w.Key("gid").Uint(gid);
  w.Key("uid").Uint(uid);
  return w.Finish();
}

Result<Empty> GidUidCall(Client& c, uint16_t command, uint64_t gid, uint64_t uid) {
  return wire::Typed<Empty>(c.Call(kDirectory, command, GidUid(gid, uid)), NoValue);
}

bool Pending(const codec::Body& b) { return b.GetBool("pending").value_or(false); }

}  // namespace

Result<uint64_t> CreateGroupWithPolicy(Client& c, std::string_view name, std::string_view desc,
                                       std::string_view policy) {
  codec::MapWriter w(1 + (desc.empty() ? 0 : 1) + (policy.empty() ? 0 : 1));
  w.Key("name").Str(name);
  if (!desc.empty()) w.Key("desc").Str(desc);
  if (!policy.empty()) w.Key("policy").Str(policy);
  return wire::Typed<uint64_t>(c.Call(kDirectory, codec::directory::kCreateGroup, w.Finish()),
                               [](const codec::Body& b) { return b.RequireUint("gid"); });
}

Result<bool> JoinGroupAsk(Client& c, uint64_t gid) {
  return wire::Typed<bool>(c.Call(kDirectory, codec::directory::kJoinGroup, UintBody("gid", gid)),
                           Pending);
}

Result<GroupSettingsInfo> SetGroup(Client& c, uint64_t gid, std::string_view policy,
                                   std::optional<bool> muted) {
  codec::MapWriter w(1 + (policy.empty() ? 0 : 1) + (muted ? 1 : 0));
  w.Key("gid").Uint(gid);
  if (!policy.empty()) w.Key("policy").Str(policy);
  if (muted) w.Key("muted").Bool(*muted);
  return wire::Typed<GroupSettingsInfo>(
      c.Call(kDirectory, codec::directory::kSetGroup, w.Finish()), [](const codec::Body& b) {
        return GroupSettingsInfo{b.GetString("policy").value_or(""),
                                 b.GetBool("muted").value_or(false)};
      });
}

Result<bool> Invite(Client& c, uint64_t gid, uint64_t uid) {
  return wire::Typed<bool>(c.Call(kDirectory, codec::directory::kInvite, GidUid(gid, uid)),
                           Pending);
}

Result<Empty> Approve(Client& c, uint64_t gid, uint64_t uid) {
  return GidUidCall(c, codec::directory::kApprove, gid, uid);
}

Result<Empty> Reject(Client& c, uint64_t gid, uint64_t uid) {
  return GidUidCall(c, codec::directory::kReject, gid, uid);
}

Result<Empty> RemoveMember(Client& c, uint64_t gid, uint64_t uid) {
  return GidUidCall(c, codec::directory::kRemoveMember, gid, uid);
}

Result<Empty> SetRole(Client& c, uint64_t gid, uint64_t uid, std::string_view role) {
  codec::MapWriter w(3);
  w.Key("gid").Uint(gid);
  w.Key("uid").Uint(uid);
  w.Key("role").Str(role);
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kSetRole, w.Finish()), NoValue);
}

Result<Empty> TransferOwner(Client& c, uint64_t gid, uint64_t uid) {
  return GidUidCall(c, codec::directory::kTransferOwner, gid, uid);
}

Result<Empty> Dissolve(Client& c, uint64_t gid) {
  return wire::Typed<Empty>(c.Call(kDirectory, codec::directory::kDissolve, UintBody("gid", gid)),
                            NoValue);
}

Result<std::vector<PendingJoinInfo>> GroupPending(Client& c, uint64_t gid) {
  return wire::AllPages<PendingJoinInfo, uint64_t>(
      [&c, gid](const std::optional<uint64_t>& after) {
        return c.Call(kDirectory, codec::directory::kGroupPending, AfterBody("gid", gid, after));
      },
      "pending",
      [](const msgpack::object& o) {
        return PendingJoinInfo{UintIn(o, "uid"), StringIn(o, "name"), StringIn(o, "kind"),
                               UintIn(o, "by")};
      },
      [](const PendingJoinInfo& p) { return p.uid; });
}

}  // namespace imbus::client

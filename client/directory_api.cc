#include "client/directory_api.h"

#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client {



namespace {

using wire::BoolIn;
using wire::StringIn;
using wire::UintIn;

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
                                 for (const msgpack::object* u : wire::ArrayOf(b, "users"))
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
  return wire::Typed<std::vector<UserInfo>>(
      c.Call(kDirectory, codec::directory::kListFriends, codec::EmptyBody()),
      [](const codec::Body& b) {
        std::vector<UserInfo> out;
        for (const msgpack::object* u : wire::ArrayOf(b, "friends")) out.push_back(ToUser(*u));
        return out;
      });
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
  return wire::Typed<std::vector<GroupInfo>>(
      c.Call(kDirectory, codec::directory::kListGroups, codec::EmptyBody()),
      [](const codec::Body& b) {
        std::vector<GroupInfo> out;
        for (const msgpack::object* g : wire::ArrayOf(b, "groups")) {
          out.push_back(GroupInfo{UintIn(*g, "gid"), StringIn(*g, "name"), StringIn(*g, "desc"),
                                  StringIn(*g, "role")});
        }
        return out;
      });
}

Result<std::vector<MemberInfo>> GroupMembers(Client& c, uint64_t gid) {
  return wire::Typed<std::vector<MemberInfo>>(
      c.Call(kDirectory, codec::directory::kGroupMembers, UintBody("gid", gid)),
      [](const codec::Body& b) {
        std::vector<MemberInfo> out;
        for (const msgpack::object* m : wire::ArrayOf(b, "members")) {
          out.push_back(MemberInfo{UintIn(*m, "uid"), StringIn(*m, "name"), StringIn(*m, "role"),
                                   BoolIn(*m, "online")});
        }
        return out;
      });
}

}  // namespace imbus::client

#include "actors/directory/directory_service.h"

#include <limits>

#include "actors/list_page.h"
#include "codec/commands.h"
#include "codec/utf8.h"

namespace imbus::actors {
namespace {

using codec::Code;

uint64_t RequirePositive(const codec::Body& body, std::string_view key) {
  const uint64_t v = body.RequireUint(key);
  if (v == 0)
    throw RequestError(Code::kBadRequest, "field '" + std::string(key) + "' must be positive");
  return v;
}

}  // namespace

DirectoryService::DirectoryService(std::unique_ptr<DirectoryStore> store, Sessions* sessions)
    : store_(std::move(store)), sessions_(sessions) {
  namespace dir = codec::directory;
  Handles(dir::kListUsers, &DirectoryService::ListUsers);
  Handles(dir::kGetUser, &DirectoryService::GetUser);
  Handles(dir::kAddFriend, &DirectoryService::AddFriend);
  Handles(dir::kRemoveFriend, &DirectoryService::RemoveFriend);
  Handles(dir::kListFriends, &DirectoryService::ListFriends);
  Handles(dir::kCreateGroup, &DirectoryService::CreateGroup);
  Handles(dir::kJoinGroup, &DirectoryService::JoinGroup);
  Handles(dir::kLeaveGroup, &DirectoryService::LeaveGroup);
  Handles(dir::kListGroups, &DirectoryService::ListGroups);
  Handles(dir::kGroupMembers, &DirectoryService::GroupMembers);
}

std::vector<bool> DirectoryService::OnlineFlags(const std::vector<uint64_t>& uids) {
  if (uids.empty()) return {};
  return sessions_->Online(uids);
}

void DirectoryService::ListUsers(const Request& req, Reply* reply) {
  const uint64_t page = req.body.GetUint("page").value_or(1);
  const uint64_t size = req.body.GetUint("size").value_or(kDefaultPageSize);
  if (page < 1) throw RequestError(Code::kBadRequest, "page must be at least 1");
  if (size < 1 || size > kMaxPageSize) throw RequestError(Code::kBadRequest, "size must be 1-100");
  // Pages so far out that (page-1)*size overflows are past any end: empty.
  DirectoryStore::UserPage result;
  if (page - 1 <= std::numeric_limits<uint64_t>::max() / size) {
    result = store_->ListUsers((page - 1) * size, static_cast<uint32_t>(size));
  } else {
    result = store_->ListUsers(std::numeric_limits<uint64_t>::max(), 0);
  }
  std::vector<uint64_t> uids;
  for (const DirectoryUser& u : result.users) uids.push_back(u.uid);
  const std::vector<bool> online = OnlineFlags(uids);

  OkWriter w(3);
  w.Key("total").Uint(result.total);
  w.Key("page").Uint(page);
  w.Key("users");
  w.packer().pack_array(static_cast<uint32_t>(result.users.size()));
  for (size_t i = 0; i < result.users.size(); ++i) {
    w.packer().pack_map(3);
    w.Key("uid").Uint(result.users[i].uid);
    w.Key("name").Str(result.users[i].name);
    w.Key("online").Bool(online[i]);
  }
  reply->body = w.Finish();
}

void DirectoryService::GetUser(const Request& req, Reply* reply) {
  const std::optional<uint64_t> uid = req.body.GetUint("uid");
  const std::optional<std::string> name = req.body.GetString("name");
  std::optional<DirectoryUser> user;
  if (uid) {
    user = store_->FindUser(*uid);
  } else if (name) {
    if (!name->empty() && name->size() <= 32) user = store_->FindUserByName(*name);
  } else {
    throw RequestError(Code::kBadRequest, "field 'uid' or 'name' is required");
  }
  if (!user) throw RequestError(Code::kNotFound, "no such user");
  const bool online = OnlineFlags({user->uid}).at(0);
  OkWriter w(3);
  w.Key("uid").Uint(user->uid);
  w.Key("name").Str(user->name);
  w.Key("online").Bool(online);
  reply->body = w.Finish();
}

void DirectoryService::AddFriend(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "cannot befriend yourself");
  if (!store_->FindUser(uid)) throw RequestError(Code::kNotFound, "no such user");
  if (!store_->AddFriends(req.meta.uid, uid))
    throw RequestError(Code::kConflict, "already friends");
  (void)reply;  // {code: 0}
}

void DirectoryService::RemoveFriend(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (!store_->RemoveFriends(req.meta.uid, uid))
    throw RequestError(Code::kNotFound, "not a friend");
  (void)reply;
}

void DirectoryService::ListFriends(const Request& req, Reply* reply) {
  const uint32_t limit = ListLimit(req.body);
  std::vector<DirectoryUser> friends =
      store_->Friends(req.meta.uid, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more = FitPage(&friends, limit, [](const DirectoryUser& u) {
    return 32 + u.name.size();  // {uid, name, online}
  });
  std::vector<uint64_t> uids;
  for (const DirectoryUser& u : friends) uids.push_back(u.uid);
  const std::vector<bool> online = OnlineFlags(uids);
  OkWriter w(2);
  w.Key("friends");
  w.packer().pack_array(static_cast<uint32_t>(friends.size()));
  for (size_t i = 0; i < friends.size(); ++i) {
    w.packer().pack_map(3);
    w.Key("uid").Uint(friends[i].uid);
    w.Key("name").Str(friends[i].name);
    w.Key("online").Bool(online[i]);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

void DirectoryService::CreateGroup(const Request& req, Reply* reply) {
  const std::string name = req.body.RequireString("name");
  const std::string desc = req.body.GetString("desc").value_or("");
  if (name.empty()) throw RequestError(Code::kBadRequest, "group name must not be empty");
  if (name.size() > kMaxGroupName) {
    throw RequestError(Code::kTooLarge, "group name must be at most 64 bytes");
  }
  if (desc.size() > kMaxGroupDesc) {
    throw RequestError(Code::kTooLarge, "group desc must be at most 512 bytes");
  }
  if (!codec::IsValidUtf8(name) || !codec::IsValidUtf8(desc)) {
    throw RequestError(Code::kBadRequest, "group name and desc must be UTF-8");
  }
  const uint64_t gid = store_->CreateGroup(req.meta.uid, name, desc);
  OkWriter w(1);
  w.Key("gid").Uint(gid);
  reply->body = w.Finish();
}

void DirectoryService::JoinGroup(const Request& req, Reply* reply) {
  const uint64_t gid = RequirePositive(req.body, "gid");
  const std::optional<bool> joined = store_->JoinGroup(gid, req.meta.uid);
  if (!joined) throw RequestError(Code::kNotFound, "no such group");
  if (!*joined) throw RequestError(Code::kConflict, "already a member");
  (void)reply;
}

void DirectoryService::LeaveGroup(const Request& req, Reply* reply) {
  const uint64_t gid = RequirePositive(req.body, "gid");
  switch (store_->LeaveGroup(gid, req.meta.uid)) {
    case LeaveOutcome::kNoGroup:
      throw RequestError(Code::kNotFound, "no such group");
    case LeaveOutcome::kNotMember:
      throw RequestError(Code::kForbidden, "not a member");
    case LeaveOutcome::kLeft:
    case LeaveOutcome::kOwnerPassed:
    case LeaveOutcome::kGroupDeleted:
      break;
  }
  (void)reply;
}

void DirectoryService::ListGroups(const Request& req, Reply* reply) {
  const uint32_t limit = ListLimit(req.body);
  std::vector<GroupMembership> groups =
      store_->GroupsOf(req.meta.uid, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more = FitPage(&groups, limit, [](const GroupMembership& g) {
    return 48 + g.group.name.size() + g.group.desc.size() + g.role.size();
  });
  OkWriter w(2);
  w.Key("groups");
  w.packer().pack_array(static_cast<uint32_t>(groups.size()));
  for (const GroupMembership& g : groups) {
    w.packer().pack_map(4);
    w.Key("gid").Uint(g.group.gid);
    w.Key("name").Str(g.group.name);
    w.Key("desc").Str(g.group.desc);
    w.Key("role").Str(g.role);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

void DirectoryService::GroupMembers(const Request& req, Reply* reply) {
  const uint64_t gid = RequirePositive(req.body, "gid");
  const uint32_t limit = ListLimit(req.body);
  if (!store_->FindGroup(gid)) throw RequestError(Code::kNotFound, "no such group");
  if (!store_->RoleOf(gid, req.meta.uid)) throw RequestError(Code::kForbidden, "not a member");
  std::vector<GroupMember> members =
      store_->Members(gid, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more = FitPage(&members, limit, [](const GroupMember& m) {
    return 40 + m.name.size() + m.role.size();  // {uid, name, role, online}
  });
  std::vector<uint64_t> uids;
  for (const GroupMember& m : members) uids.push_back(m.uid);
  const std::vector<bool> online = OnlineFlags(uids);
  OkWriter w(2);
  w.Key("members");
  w.packer().pack_array(static_cast<uint32_t>(members.size()));
  for (size_t i = 0; i < members.size(); ++i) {
    w.packer().pack_map(4);
    w.Key("uid").Uint(members[i].uid);
    w.Key("name").Str(members[i].name);
    w.Key("role").Str(members[i].role);
    w.Key("online").Bool(online[i]);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

}  // namespace imbus::actors

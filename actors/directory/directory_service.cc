#include "actors/directory/directory_service.h"

#include <limits>
#include <set>

#include "actors/list_page.h"
#include "codec/commands.h"
#include "codec/utf8.h"
#include "net/clock.h"

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

DirectoryService::DirectoryService(std::unique_ptr<DirectoryStore> store, Sessions* sessions,
                                   Options options)
    : store_(std::move(store)), sessions_(sessions), options_(options) {
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
  Handles(dir::kFriendRequests, &DirectoryService::FriendRequests);
  Handles(dir::kAcceptFriend, &DirectoryService::AcceptFriend);
  Handles(dir::kDeclineFriend, &DirectoryService::DeclineFriend);
  Handles(dir::kBlock, &DirectoryService::Block);
  Handles(dir::kUnblock, &DirectoryService::Unblock);
  Handles(dir::kListBlocked, &DirectoryService::ListBlocked);
  Handles(dir::kSetGroup, &DirectoryService::SetGroup);
  Handles(dir::kInvite, &DirectoryService::Invite);
  Handles(dir::kApprove, &DirectoryService::Approve);
  Handles(dir::kReject, &DirectoryService::Reject);
  Handles(dir::kRemoveMember, &DirectoryService::RemoveMember);
  Handles(dir::kSetRole, &DirectoryService::SetRole);
  Handles(dir::kTransferOwner, &DirectoryService::TransferOwner);
  Handles(dir::kDissolve, &DirectoryService::Dissolve);
  Handles(dir::kGroupPending, &DirectoryService::GroupPending);
}

std::vector<bool> DirectoryService::OnlineFlags(uint64_t viewer,
                                                const std::vector<uint64_t>& uids) {
  if (uids.empty()) return {};
  std::vector<bool> online = sessions_->Online(uids);
  std::vector<uint64_t> shown;  // only the online ones can be hidden
  for (size_t i = 0; i < uids.size(); ++i) {
    if (online[i] && uids[i] != viewer) shown.push_back(uids[i]);
  }
  if (shown.empty()) return online;
  const std::set<uint64_t> blockers = store_->BlockersOf(viewer, shown);
  for (size_t i = 0; i < uids.size(); ++i) {
    if (blockers.count(uids[i]) != 0) online[i] = false;
  }
  return online;
}

void DirectoryService::FriendEvent(Reply* reply, uint64_t to, uint64_t about,
                                   const std::string& event, bool skip_requester) {
  Push push;
  push.meta.uids = {to};
  push.meta.service = codec::ToWire(codec::Service::kDirectory);
  push.meta.command = codec::directory::kFriendEvent;
  const std::optional<DirectoryUser> u = store_->FindUser(about);
  codec::MapWriter w(3);
  w.Key("uid").Uint(about);
  w.Key("name").Str(u ? u->name : "");
  w.Key("event").Str(event);
  push.body = w.Finish();
  push.skip_requester = skip_requester;
  reply->pushes.push_back(std::move(push));
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
  const std::vector<bool> online = OnlineFlags(req.meta.uid, uids);

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
  const bool online = OnlineFlags(req.meta.uid, {user->uid}).at(0);
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
  const uint64_t me = req.meta.uid;
  bool pending = false;
  if (options_.immediate_friends) {
    if (!store_->BlockersOf(me, {uid}).empty() || !store_->BlockersOf(uid, {me}).empty()) {
      throw RequestError(Code::kForbidden, "blocked");
    }
    if (!store_->AddFriends(me, uid)) throw RequestError(Code::kConflict, "already friends");
  } else {
    switch (store_->RequestFriend(me, uid, net::WallNowMs())) {
      case FriendRequestOutcome::kRequested:
        pending = true;
        FriendEvent(reply, uid, me, "request", false);
        FriendEvent(reply, me, uid, "request_sent", true);
        break;
      case FriendRequestOutcome::kAlreadyRequested:
        throw RequestError(Code::kConflict, "request already pending");
      case FriendRequestOutcome::kBefriended:
        FriendEvent(reply, uid, me, "friends", false);
        FriendEvent(reply, me, uid, "friends", true);
        break;
      case FriendRequestOutcome::kAlreadyFriends:
        throw RequestError(Code::kConflict, "already friends");
      case FriendRequestOutcome::kBlocked:
        throw RequestError(Code::kForbidden, "this user does not accept requests from you");
      case FriendRequestOutcome::kBlocking:
        throw RequestError(Code::kForbidden, "you block this user");
    }
  }
  OkWriter w(1);
  w.Key("pending").Bool(pending);
  reply->body = w.Finish();
}

void DirectoryService::FriendRequests(const Request& req, Reply* reply) {
  const uint32_t limit = ListLimit(req.body);
  const bool incoming = req.body.GetBool("incoming").value_or(true);
  std::vector<FriendRequest> list = store_->FriendRequests(
      req.meta.uid, incoming, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more = FitPage(&list, limit, [](const FriendRequest& r) {
    return 40 + r.name.size();  // {uid, name, ts}
  });
  OkWriter w(2);
  w.Key("requests");
  w.packer().pack_array(static_cast<uint32_t>(list.size()));
  for (const FriendRequest& r : list) {
    w.packer().pack_map(3);
    w.Key("uid").Uint(r.uid);
    w.Key("name").Str(r.name);
    w.Key("ts").Int(r.created_ms);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

void DirectoryService::AcceptFriend(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (!store_->AcceptFriend(req.meta.uid, uid)) {
    throw RequestError(Code::kNotFound, "no pending request from this user");
  }
  FriendEvent(reply, uid, req.meta.uid, "friends", false);
  FriendEvent(reply, req.meta.uid, uid, "friends", true);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::DeclineFriend(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (!store_->DeclineFriend(req.meta.uid, uid)) {
    throw RequestError(Code::kNotFound, "no pending request between you");
  }
  FriendEvent(reply, uid, req.meta.uid, "declined", false);
  FriendEvent(reply, req.meta.uid, uid, "declined", true);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::Block(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "cannot block yourself");
  if (!store_->FindUser(uid)) throw RequestError(Code::kNotFound, "no such user");
  if (!store_->Block(req.meta.uid, uid, net::WallNowMs())) {
    throw RequestError(Code::kConflict, "blocked already");
  }
  // The blocked user is not told; the blocker's other sessions are.
  FriendEvent(reply, req.meta.uid, uid, "blocked", true);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::Unblock(const Request& req, Reply* reply) {
  const uint64_t uid = RequirePositive(req.body, "uid");
  if (!store_->Unblock(req.meta.uid, uid)) throw RequestError(Code::kNotFound, "not blocked");
  FriendEvent(reply, req.meta.uid, uid, "unblocked", true);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::ListBlocked(const Request& req, Reply* reply) {
  const uint32_t limit = ListLimit(req.body);
  std::vector<DirectoryUser> list =
      store_->Blocked(req.meta.uid, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more =
      FitPage(&list, limit, [](const DirectoryUser& u) { return 24 + u.name.size(); });
  OkWriter w(2);
  w.Key("users");
  w.packer().pack_array(static_cast<uint32_t>(list.size()));
  for (const DirectoryUser& u : list) {
    w.packer().pack_map(2);
    w.Key("uid").Uint(u.uid);
    w.Key("name").Str(u.name);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
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
  const std::vector<bool> online = OnlineFlags(req.meta.uid, uids);
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
  GroupSettings settings;
  settings.policy = req.body.GetString("policy").value_or(kPolicyOpen);
  if (settings.policy != kPolicyOpen && settings.policy != kPolicyRequest &&
      settings.policy != kPolicyInvite) {
    throw RequestError(Code::kBadRequest, "policy must be open, request or invite");
  }
  const uint64_t gid = store_->CreateGroup(req.meta.uid, name, desc);
  if (settings.policy != kPolicyOpen) store_->SetSettings(gid, settings);
  OkWriter w(1);
  w.Key("gid").Uint(gid);
  reply->body = w.Finish();
}

void DirectoryService::JoinGroup(const Request& req, Reply* reply) {
  const uint64_t gid = RequirePositive(req.body, "gid");
  const uint64_t uid = req.meta.uid;
  const std::optional<GroupSettings> settings = store_->Settings(gid);
  if (!settings) throw RequestError(Code::kNotFound, "no such group");
  if (store_->RoleOf(gid, uid)) throw RequestError(Code::kConflict, "already a member");
  const std::optional<PendingJoin> pending = store_->FindPending(gid, uid);
  const bool invited = pending && pending->kind == kPendingInvite;
  bool waiting = false;
  if (settings->policy == kPolicyOpen || invited) {
    Admit(reply, gid, uid, invited ? pending->by : uid);
  } else if (settings->policy == kPolicyRequest) {
    if (pending) throw RequestError(Code::kConflict, "your request is pending");
    store_->AddPending(gid, uid, kPendingRequest, uid, net::WallNowMs());
    waiting = true;
    // The admins learn of it (only them: members see joins, not requests).
    std::vector<uint64_t> admins;
    for (const GroupMember& m : store_->Members(gid, 0, kAllRows)) {
      if (m.role == kRoleOwner || m.role == kRoleAdmin) admins.push_back(m.uid);
    }
    Push push;
    push.meta.uids = std::move(admins);
    push.meta.service = codec::ToWire(codec::Service::kDirectory);
    push.meta.command = codec::directory::kGroupEvent;
    codec::MapWriter w(4);
    w.Key("gid").Uint(gid).Key("event").Str("join_request").Key("uid").Uint(uid);
    w.Key("by").Uint(uid);
    push.body = w.Finish();
    if (!push.meta.uids.empty()) reply->pushes.push_back(std::move(push));
  } else {
    throw RequestError(Code::kForbidden, "this group is by invitation only");
  }
  OkWriter w(1);
  w.Key("pending").Bool(waiting);
  reply->body = w.Finish();
}

void DirectoryService::LeaveGroup(const Request& req, Reply* reply) {
  const uint64_t gid = RequirePositive(req.body, "gid");
  switch (store_->LeaveGroup(gid, req.meta.uid)) {
    case LeaveOutcome::kNoGroup:
      throw RequestError(Code::kNotFound, "no such group");
    case LeaveOutcome::kNotMember:
      throw RequestError(Code::kForbidden, "not a member");
    case LeaveOutcome::kLeft:
      GroupEvent(reply, gid, "left", {req.meta.uid, req.meta.uid, {}, nullptr}, {req.meta.uid});
      break;
    case LeaveOutcome::kOwnerPassed:
      GroupEvent(reply, gid, "left", {req.meta.uid, req.meta.uid, {}, nullptr}, {req.meta.uid});
      // The heir (the longest-standing member) is a change of its own: say who.
      if (std::optional<GroupRecord> g = store_->FindGroup(gid)) {
        GroupEvent(reply, gid, "owner", {g->owner_uid, req.meta.uid, kRoleOwner, nullptr});
      }
      break;
    case LeaveOutcome::kGroupDeleted:
      break;
  }
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
  const std::vector<bool> online = OnlineFlags(req.meta.uid, uids);
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

// DirectoryService: groups with roles and join policies (issue 18). Roles: owner
// (one), admins, members. Admins approve or reject join requests, invite, remove
// members (an admin only plain members) and change the settings (policy, muted);
// the owner also sets roles, hands the group over and dissolves it. Every
// membership change is pushed to the members as DIRECTORY/GROUP_EVENT.
#include <algorithm>

#include "actors/directory/directory_service.h"
#include "actors/list_page.h"
#include "codec/commands.h"
#include "net/clock.h"

namespace imbus::actors {
namespace {

using codec::Code;

uint64_t Positive(const codec::Body& body, std::string_view key) {
  const uint64_t v = body.RequireUint(key);
  if (v == 0) {
    throw RequestError(Code::kBadRequest, "field '" + std::string(key) + "' must be positive");
  }
  return v;
}

int Rank(const std::string& role) { return role == kRoleOwner ? 2 : role == kRoleAdmin ? 1 : 0; }

}  // namespace

std::string DirectoryService::RequireRole(uint64_t gid, uint64_t uid, const char* least) {
  if (!store_->FindGroup(gid)) throw RequestError(Code::kNotFound, "no such group");
  const std::optional<std::string> role = store_->RoleOf(gid, uid);
  if (!role) throw RequestError(Code::kForbidden, "not a member");
  if (Rank(*role) < Rank(least)) {
    throw RequestError(Code::kForbidden, std::string("only the group's ") +
                                             (Rank(least) == 2 ? "owner" : "admins") +
                                             " may do that");
  }
  return *role;
}

void DirectoryService::GroupEvent(Reply* reply, uint64_t gid, const std::string& event,
                                  const GroupEventFields& f, std::vector<uint64_t> extra) {
  Push push;
  for (const GroupMember& m : store_->Members(gid, 0, kAllRows)) push.meta.uids.push_back(m.uid);
  for (uint64_t u : extra) {
    if (std::find(push.meta.uids.begin(), push.meta.uids.end(), u) == push.meta.uids.end()) {
      push.meta.uids.push_back(u);
    }
  }
  if (push.meta.uids.empty()) return;
  push.meta.service = codec::ToWire(codec::Service::kDirectory);
  push.meta.command = codec::directory::kGroupEvent;
  codec::MapWriter w(4 + (f.role.empty() ? 0 : 1) + (f.settings ? 2 : 0));
  w.Key("gid").Uint(gid);
  w.Key("event").Str(event);
  w.Key("uid").Uint(f.uid);
  w.Key("by").Uint(f.by);
  if (!f.role.empty()) w.Key("role").Str(f.role);
  if (f.settings) {
    w.Key("policy").Str(f.settings->policy);
    w.Key("muted").Bool(f.settings->muted);
  }
  push.body = w.Finish();
  reply->pushes.push_back(std::move(push));
}

void DirectoryService::Admit(Reply* reply, uint64_t gid, uint64_t uid, uint64_t by) {
  const std::optional<bool> joined = store_->JoinGroup(gid, uid);
  if (!joined) throw RequestError(Code::kNotFound, "no such group");
  if (!*joined) throw RequestError(Code::kConflict, "already a member");
  store_->RemovePending(gid, uid);
  GroupEvent(reply, gid, "joined", {uid, by, kRoleMember, nullptr});
}

void DirectoryService::SetGroup(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const std::optional<std::string> policy = req.body.GetString("policy");
  const std::optional<bool> muted = req.body.GetBool("muted");
  // Reading the settings needs membership; changing them an admin.
  RequireRole(gid, req.meta.uid, policy || muted ? kRoleAdmin : kRoleMember);
  GroupSettings settings = store_->Settings(gid).value_or(GroupSettings{});
  if (policy || muted) {
    if (policy) {
      if (*policy != kPolicyOpen && *policy != kPolicyRequest && *policy != kPolicyInvite) {
        throw RequestError(Code::kBadRequest, "policy must be open, request or invite");
      }
      settings.policy = *policy;
    }
    if (muted) settings.muted = *muted;
    store_->SetSettings(gid, settings);
    GroupEvent(reply, gid, "settings", {0, req.meta.uid, {}, &settings});
  }
  OkWriter w(2);
  w.Key("policy").Str(settings.policy);
  w.Key("muted").Bool(settings.muted);
  reply->body = w.Finish();
}

void DirectoryService::Invite(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  RequireRole(gid, req.meta.uid, kRoleAdmin);
  if (!store_->FindUser(uid)) throw RequestError(Code::kNotFound, "no such user");
  if (store_->RoleOf(gid, uid)) throw RequestError(Code::kConflict, "already a member");
  if (!store_->BlockersOf(req.meta.uid, {uid}).empty()) {
    throw RequestError(Code::kForbidden, "this user does not accept invitations from you");
  }
  bool waiting = false;
  const std::optional<PendingJoin> pending = store_->FindPending(gid, uid);
  if (pending && pending->kind == kPendingRequest) {
    Admit(reply, gid, uid, req.meta.uid);  // they asked: inviting them approves it
  } else {
    if (pending) throw RequestError(Code::kConflict, "invited already");
    store_->AddPending(gid, uid, kPendingInvite, req.meta.uid, net::WallNowMs());
    waiting = true;
    GroupEvent(reply, gid, "invited", {uid, req.meta.uid, {}, nullptr}, {uid});
  }
  OkWriter w(1);
  w.Key("pending").Bool(waiting);
  reply->body = w.Finish();
}

void DirectoryService::Approve(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  RequireRole(gid, req.meta.uid, kRoleAdmin);
  const std::optional<PendingJoin> pending = store_->FindPending(gid, uid);
  if (!pending || pending->kind != kPendingRequest) {
    throw RequestError(Code::kNotFound, "no join request from this user");
  }
  Admit(reply, gid, uid, req.meta.uid);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::Reject(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  // An admin rejects a request or withdraws an invitation; the user may decline
  // their own invitation (or withdraw their request).
  if (uid != req.meta.uid) RequireRole(gid, req.meta.uid, kRoleAdmin);
  if (!store_->RemovePending(gid, uid)) {
    if (!store_->FindGroup(gid)) throw RequestError(Code::kNotFound, "no such group");
    throw RequestError(Code::kNotFound, "nothing pending for this user");
  }
  GroupEvent(reply, gid, "rejected", {uid, req.meta.uid, {}, nullptr}, {uid});
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::RemoveMember(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  const std::string mine = RequireRole(gid, req.meta.uid, kRoleAdmin);
  const std::optional<std::string> theirs = store_->RoleOf(gid, uid);
  if (!theirs) throw RequestError(Code::kNotFound, "not a member");
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "use LEAVE_GROUP");
  if (Rank(*theirs) >= Rank(mine)) {
    throw RequestError(Code::kForbidden, "you may only remove members below your role");
  }
  store_->RemoveMember(gid, uid);
  GroupEvent(reply, gid, "removed", {uid, req.meta.uid, {}, nullptr}, {uid});
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::SetRole(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  const std::string role = req.body.RequireString("role");
  if (role != kRoleAdmin && role != kRoleMember) {
    throw RequestError(Code::kBadRequest,
                       "role must be admin or member (TRANSFER_OWNER for owner)");
  }
  RequireRole(gid, req.meta.uid, kRoleOwner);
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "use TRANSFER_OWNER");
  if (!store_->SetRole(gid, uid, role)) throw RequestError(Code::kNotFound, "not a member");
  GroupEvent(reply, gid, "role", {uid, req.meta.uid, role, nullptr});
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::TransferOwner(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint64_t uid = Positive(req.body, "uid");
  RequireRole(gid, req.meta.uid, kRoleOwner);
  if (uid == req.meta.uid) throw RequestError(Code::kBadRequest, "you own it already");
  if (!store_->RoleOf(gid, uid)) throw RequestError(Code::kNotFound, "not a member");
  store_->TransferOwner(gid, req.meta.uid, uid);
  GroupEvent(reply, gid, "owner", {uid, req.meta.uid, kRoleOwner, nullptr});
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::Dissolve(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  RequireRole(gid, req.meta.uid, kRoleOwner);
  GroupEvent(reply, gid, "dissolved", {0, req.meta.uid, {}, nullptr});  // before: to members
  store_->Dissolve(gid);
  reply->body = OkWriter(0).Finish();
}

void DirectoryService::GroupPending(const Request& req, Reply* reply) {
  const uint64_t gid = Positive(req.body, "gid");
  const uint32_t limit = ListLimit(req.body);
  RequireRole(gid, req.meta.uid, kRoleAdmin);
  std::vector<PendingJoin> list =
      store_->PendingJoins(gid, req.body.GetUint("after").value_or(0), limit + 1);
  const bool more = FitPage(&list, limit, [](const PendingJoin& p) { return 56 + p.name.size(); });
  OkWriter w(2);
  w.Key("pending");
  w.packer().pack_array(static_cast<uint32_t>(list.size()));
  for (const PendingJoin& p : list) {
    w.packer().pack_map(4);
    w.Key("uid").Uint(p.uid);
    w.Key("name").Str(p.name);
    w.Key("kind").Str(p.kind);
    w.Key("by").Uint(p.by);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

}  // namespace imbus::actors

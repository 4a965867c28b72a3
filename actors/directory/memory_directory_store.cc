#include "actors/directory/memory_directory_store.h"

#include <algorithm>

namespace imbus::actors {

uint64_t MemoryDirectoryStore::AddUser(const std::string& name) {
  const uint64_t uid = next_uid_++;
  users_[uid] = DirectoryUser{uid, name};
  return uid;
}

void MemoryDirectoryStore::DeleteUser(uint64_t uid) { users_.erase(uid); }

bool MemoryDirectoryStore::Live(uint64_t uid) const { return users_.count(uid) > 0; }

DirectoryStore::UserPage MemoryDirectoryStore::ListUsers(uint64_t offset, uint32_t limit) {
  UserPage page;
  page.total = users_.size();
  if (offset >= users_.size()) return page;
  auto it = std::next(users_.begin(), static_cast<std::ptrdiff_t>(offset));
  for (; it != users_.end() && page.users.size() < limit; ++it) page.users.push_back(it->second);
  return page;
}

std::optional<DirectoryUser> MemoryDirectoryStore::FindUser(uint64_t uid) {
  auto it = users_.find(uid);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::optional<DirectoryUser> MemoryDirectoryStore::FindUserByName(const std::string& name) {
  for (const auto& [uid, user] : users_) {
    if (user.name == name) return user;
  }
  return std::nullopt;
}

bool MemoryDirectoryStore::AddFriends(uint64_t a, uint64_t b) {
  if (friends_.count({a, b}) > 0) return false;
  friends_.insert({a, b});
  friends_.insert({b, a});
  return true;
}

bool MemoryDirectoryStore::RemoveFriends(uint64_t a, uint64_t b) {
  const size_t n = friends_.erase({a, b}) + friends_.erase({b, a});
  return n > 0;
}

std::vector<DirectoryUser> MemoryDirectoryStore::Friends(uint64_t uid, uint64_t after_uid,
                                                         uint32_t limit) {
  std::vector<DirectoryUser> out;
  for (auto it = friends_.upper_bound({uid, after_uid});
       it != friends_.end() && it->first == uid && out.size() < limit; ++it) {
    if (auto u = FindUser(it->second)) out.push_back(*u);
  }
  return out;
}

uint64_t MemoryDirectoryStore::CreateGroup(uint64_t owner, const std::string& name,
                                           const std::string& desc) {
  const uint64_t gid = next_gid_++;
  Group& g = groups_[gid];
  g.record = GroupRecord{gid, name, desc, owner};
  g.members[owner] = Member{kRoleOwner, join_counter_++};
  return gid;
}

std::optional<GroupRecord> MemoryDirectoryStore::FindGroup(uint64_t gid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return std::nullopt;
  return it->second.record;
}

std::optional<std::string> MemoryDirectoryStore::RoleOf(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return std::nullopt;
  auto m = it->second.members.find(uid);
  if (m == it->second.members.end()) return std::nullopt;
  return m->second.role;
}

std::optional<bool> MemoryDirectoryStore::JoinGroup(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return std::nullopt;
  if (it->second.members.count(uid) > 0) return false;
  it->second.members[uid] = Member{kRoleMember, join_counter_++};
  return true;
}

LeaveOutcome MemoryDirectoryStore::LeaveGroup(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return LeaveOutcome::kNoGroup;
  Group& g = it->second;
  auto m = g.members.find(uid);
  if (m == g.members.end()) return LeaveOutcome::kNotMember;
  const bool was_owner = m->second.role == kRoleOwner;
  g.members.erase(m);
  const std::pair<const uint64_t, Member>* heir = nullptr;
  for (const auto& entry : g.members) {
    if (Live(entry.first) && (heir == nullptr || entry.second.joined < heir->second.joined)) {
      heir = &entry;
    }
  }
  if (heir == nullptr) {
    groups_.erase(it);
    return LeaveOutcome::kGroupDeleted;
  }
  if (!was_owner) return LeaveOutcome::kLeft;
  g.members[heir->first].role = kRoleOwner;
  g.record.owner_uid = heir->first;
  return LeaveOutcome::kOwnerPassed;
}

std::vector<GroupMembership> MemoryDirectoryStore::GroupsOf(uint64_t uid, uint64_t after_gid,
                                                            uint32_t limit) {
  std::vector<GroupMembership> out;
  for (auto it = groups_.upper_bound(after_gid); it != groups_.end() && out.size() < limit; ++it) {
    const Group& g = it->second;
    auto m = g.members.find(uid);
    if (m != g.members.end()) out.push_back({g.record, m->second.role});
  }
  return out;
}

std::vector<GroupMember> MemoryDirectoryStore::Members(uint64_t gid, uint64_t after_uid,
                                                       uint32_t limit) {
  std::vector<GroupMember> out;
  auto it = groups_.find(gid);
  if (it == groups_.end()) return out;
  const auto& members = it->second.members;
  for (auto m = members.upper_bound(after_uid); m != members.end() && out.size() < limit; ++m) {
    if (auto u = FindUser(m->first)) out.push_back({m->first, u->name, m->second.role});
  }
  return out;
}

FriendRequestOutcome MemoryDirectoryStore::RequestFriend(uint64_t from, uint64_t to,
                                                         int64_t now_ms) {
  if (friends_.count({from, to}) > 0) return FriendRequestOutcome::kAlreadyFriends;
  if (blocks_.count({to, from}) > 0) return FriendRequestOutcome::kBlocked;
  if (blocks_.count({from, to}) > 0) return FriendRequestOutcome::kBlocking;
  if (requests_.erase({to, from}) > 0) {
    AddFriends(from, to);
    return FriendRequestOutcome::kBefriended;
  }
  return requests_.emplace(std::make_pair(from, to), now_ms).second
             ? FriendRequestOutcome::kRequested
             : FriendRequestOutcome::kAlreadyRequested;
}

bool MemoryDirectoryStore::AcceptFriend(uint64_t me, uint64_t from) {
  if (requests_.erase({from, me}) == 0) return false;
  AddFriends(me, from);
  return true;
}

bool MemoryDirectoryStore::DeclineFriend(uint64_t me, uint64_t other) {
  return requests_.erase({other, me}) + requests_.erase({me, other}) > 0;
}

std::vector<FriendRequest> MemoryDirectoryStore::FriendRequests(uint64_t uid, bool incoming,
                                                                uint64_t after_uid,
                                                                uint32_t limit) {
  std::map<uint64_t, FriendRequest> found;
  for (const auto& [key, ms] : requests_) {
    const uint64_t other = incoming ? key.first : key.second;
    if ((incoming ? key.second : key.first) != uid || other <= after_uid) continue;
    if (auto u = FindUser(other)) found[other] = FriendRequest{other, u->name, ms};
  }
  std::vector<FriendRequest> out;
  for (auto& [other, r] : found) {
    if (out.size() >= limit) break;
    out.push_back(std::move(r));
  }
  return out;
}

bool MemoryDirectoryStore::Block(uint64_t uid, uint64_t other, int64_t /*now_ms*/) {
  RemoveFriends(uid, other);
  DeclineFriend(uid, other);
  return blocks_.insert({uid, other}).second;
}

bool MemoryDirectoryStore::Unblock(uint64_t uid, uint64_t other) {
  return blocks_.erase({uid, other}) > 0;
}

std::vector<DirectoryUser> MemoryDirectoryStore::Blocked(uint64_t uid, uint64_t after_uid,
                                                         uint32_t limit) {
  std::vector<DirectoryUser> out;
  for (auto it = blocks_.upper_bound({uid, after_uid});
       it != blocks_.end() && it->first == uid && out.size() < limit; ++it) {
    if (auto u = FindUser(it->second)) out.push_back(*u);
  }
  return out;
}

bool MemoryDirectoryStore::AreFriends(uint64_t a, uint64_t b) { return friends_.count({a, b}) > 0; }

std::set<uint64_t> MemoryDirectoryStore::BlockersOf(uint64_t uid,
                                                    const std::vector<uint64_t>& uids) {
  std::set<uint64_t> out;
  for (uint64_t u : uids) {
    if (blocks_.count({u, uid}) > 0) out.insert(u);
  }
  return out;
}

std::optional<GroupSettings> MemoryDirectoryStore::Settings(uint64_t gid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return std::nullopt;
  return it->second.settings;
}

void MemoryDirectoryStore::SetSettings(uint64_t gid, const GroupSettings& settings) {
  if (auto it = groups_.find(gid); it != groups_.end()) it->second.settings = settings;
}

bool MemoryDirectoryStore::AddPending(uint64_t gid, uint64_t uid, const std::string& kind,
                                      uint64_t by, int64_t /*now_ms*/) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return false;
  return it->second.pending.emplace(uid, PendingJoin{uid, "", kind, by}).second;
}

std::optional<PendingJoin> MemoryDirectoryStore::FindPending(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return std::nullopt;
  auto p = it->second.pending.find(uid);
  if (p == it->second.pending.end()) return std::nullopt;
  return p->second;
}

bool MemoryDirectoryStore::RemovePending(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  return it != groups_.end() && it->second.pending.erase(uid) > 0;
}

std::vector<PendingJoin> MemoryDirectoryStore::PendingJoins(uint64_t gid, uint64_t after_uid,
                                                            uint32_t limit) {
  std::vector<PendingJoin> out;
  auto it = groups_.find(gid);
  if (it == groups_.end()) return out;
  for (auto p = it->second.pending.upper_bound(after_uid);
       p != it->second.pending.end() && out.size() < limit; ++p) {
    if (auto u = FindUser(p->first)) {
      PendingJoin j = p->second;
      j.name = u->name;
      out.push_back(std::move(j));
    }
  }
  return out;
}

bool MemoryDirectoryStore::RemoveMember(uint64_t gid, uint64_t uid) {
  auto it = groups_.find(gid);
  return it != groups_.end() && it->second.members.erase(uid) > 0;
}

bool MemoryDirectoryStore::SetRole(uint64_t gid, uint64_t uid, const std::string& role) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) return false;
  auto m = it->second.members.find(uid);
  if (m == it->second.members.end()) return false;
  m->second.role = role;
  return true;
}

void MemoryDirectoryStore::TransferOwner(uint64_t gid, uint64_t from, uint64_t to) {
  SetRole(gid, from, kRoleAdmin);
  SetRole(gid, to, kRoleOwner);
  if (auto it = groups_.find(gid); it != groups_.end()) it->second.record.owner_uid = to;
}

void MemoryDirectoryStore::Dissolve(uint64_t gid) { groups_.erase(gid); }

}  // namespace imbus::actors

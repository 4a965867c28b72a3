// Public (tests). DirectoryStore in process memory, with the same rules as
// MariaDbDirectoryStore. Users are added and deleted by the test (AddUser /
// DeleteUser) since the auth service owns them in production.
#pragma once

#include <map>
#include <set>
#include <utility>

#include "actors/directory/directory_store.h"

namespace imbus::actors {

class MemoryDirectoryStore : public DirectoryStore {
 public:
  uint64_t AddUser(const std::string& name);
  void DeleteUser(uint64_t uid);

  UserPage ListUsers(uint64_t offset, uint32_t limit) override;
  std::optional<DirectoryUser> FindUser(uint64_t uid) override;
  std::optional<DirectoryUser> FindUserByName(const std::string& name) override;
  bool AddFriends(uint64_t a, uint64_t b) override;
  bool RemoveFriends(uint64_t a, uint64_t b) override;
  std::vector<DirectoryUser> Friends(uint64_t uid, uint64_t after_uid, uint32_t limit) override;
  uint64_t CreateGroup(uint64_t owner, const std::string& name, const std::string& desc) override;
  std::optional<GroupRecord> FindGroup(uint64_t gid) override;
  std::optional<std::string> RoleOf(uint64_t gid, uint64_t uid) override;
  std::optional<bool> JoinGroup(uint64_t gid, uint64_t uid) override;
  LeaveOutcome LeaveGroup(uint64_t gid, uint64_t uid) override;
  std::vector<GroupMembership> GroupsOf(uint64_t uid, uint64_t after_gid, uint32_t limit) override;
  std::vector<GroupMember> Members(uint64_t gid, uint64_t after_uid, uint32_t limit) override;
  FriendRequestOutcome RequestFriend(uint64_t from, uint64_t to, int64_t now_ms) override;
  bool AcceptFriend(uint64_t me, uint64_t from) override;
  bool DeclineFriend(uint64_t me, uint64_t other) override;
  std::vector<FriendRequest> FriendRequests(uint64_t uid, bool incoming, uint64_t after_uid,
                                            uint32_t limit) override;
  bool Block(uint64_t uid, uint64_t other, int64_t now_ms) override;
  bool Unblock(uint64_t uid, uint64_t other) override;
  std::vector<DirectoryUser> Blocked(uint64_t uid, uint64_t after_uid, uint32_t limit) override;
  bool AreFriends(uint64_t a, uint64_t b) override;
  std::set<uint64_t> BlockersOf(uint64_t uid, const std::vector<uint64_t>& uids) override;
  std::optional<GroupSettings> Settings(uint64_t gid) override;
  void SetSettings(uint64_t gid, const GroupSettings& settings) override;
  bool AddPending(uint64_t gid, uint64_t uid, const std::string& kind, uint64_t by,
                  int64_t now_ms) override;
  std::optional<PendingJoin> FindPending(uint64_t gid, uint64_t uid) override;
  bool RemovePending(uint64_t gid, uint64_t uid) override;
  std::vector<PendingJoin> PendingJoins(uint64_t gid, uint64_t after_uid, uint32_t limit) override;
  bool RemoveMember(uint64_t gid, uint64_t uid) override;
  bool SetRole(uint64_t gid, uint64_t uid, const std::string& role) override;
  void TransferOwner(uint64_t gid, uint64_t from, uint64_t to) override;
  void Dissolve(uint64_t gid) override;

 private:
  struct Member {
    std::string role;
    uint64_t joined = 0;  // order of joining (a counter)
  };
  struct Group {
    GroupRecord record;
    std::map<uint64_t, Member> members;  // by uid
    GroupSettings settings;
    std::map<uint64_t, PendingJoin> pending;  // by uid
  };
  bool Live(uint64_t uid) const;

  uint64_t next_uid_ = 1;
  uint64_t next_gid_ = 1;
  uint64_t join_counter_ = 0;
  std::map<uint64_t, DirectoryUser> users_;          // live users only
  std::set<std::pair<uint64_t, uint64_t>> friends_;  // both directions
  std::map<uint64_t, Group> groups_;
  std::map<std::pair<uint64_t, uint64_t>, int64_t> requests_;  // (from, to) -> ms
  std::set<std::pair<uint64_t, uint64_t>> blocks_;             // (blocker, blocked)
};

}  // namespace imbus::actors

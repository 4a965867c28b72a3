// Public. DirectoryStore on MariaDB (schema migration 2: friends, chat_groups,
// group_members, user_blocks; users from migration 1). Uses the worker thread's Db;
// not thread-safe.
//
// User pages never scan with OFFSET: user_blocks holds the live users per block of
// 1024 uids (kept by triggers), so the row at `offset` is found by summing block
// counts and skipping fewer than 1024 rows inside one block.
#pragma once

#include "actors/db/db.h"
#include "actors/directory/directory_store.h"

namespace imbus::actors {

class MariaDbDirectoryStore : public DirectoryStore {
 public:
  explicit MariaDbDirectoryStore(Db* db) : db_(db) {}  // not owned

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

  // The users per block, as the page lookup uses them (tests, benchmarks).
  static constexpr uint64_t kBlockSize = 1024;

 private:
  FriendRequestOutcome RequestFriendOnce(uint64_t from, uint64_t to, int64_t now_ms);
  bool AcceptFriendOnce(uint64_t me, uint64_t from);
  Db* db_;
};

}  // namespace imbus::actors

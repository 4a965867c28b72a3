// Public. DirectoryStore: the narrow storage interface of the directory service
// (users as others see them, friendships, groups), with a MariaDB implementation
// (MariaDbDirectoryStore) and an in-memory one for logic tests (MemoryDirectoryStore).
// The presence service reads friendships through it too. Implementations are used
// by one thread at a time. "Live" users are those not deleted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace imbus::actors {

struct DirectoryUser {
  uint64_t uid = 0;
  std::string name;
};

struct GroupRecord {
  uint64_t gid = 0;
  std::string name;
  std::string desc;
  uint64_t owner_uid = 0;
};

struct GroupMembership {
  GroupRecord group;
  std::string role;  // kRoleOwner or kRoleMember
};

struct GroupMember {
  uint64_t uid = 0;
  std::string name;
  std::string role;
};

inline constexpr const char* kRoleOwner = "owner";
inline constexpr uint32_t kAllRows = UINT32_MAX;  // a `limit` that does not limit
inline constexpr const char* kRoleMember = "member";

enum class LeaveOutcome {
  kNoGroup,       // no such group
  kNotMember,     // the user is not a member
  kLeft,          // left; the group goes on
  kOwnerPassed,   // the owner left; the longest-standing live member is the owner now
  kGroupDeleted,  // the last live member left; the group is gone
};

class DirectoryStore {
 public:
  virtual ~DirectoryStore() = default;

  // Live users ordered by uid: rows [offset, offset + limit) of that order, and the
  // number of live users. Reads both from one snapshot.
  struct UserPage {
    uint64_t total = 0;
    std::vector<DirectoryUser> users;
  };
  virtual UserPage ListUsers(uint64_t offset, uint32_t limit) = 0;
  virtual std::optional<DirectoryUser> FindUser(uint64_t uid) = 0;
  // Exact (bytes, case; no padding), like LOGIN: users.name is VARBINARY.
  virtual std::optional<DirectoryUser> FindUserByName(const std::string& name) = 0;

  // Stores both directions at once. False when they are friends already.
  virtual bool AddFriends(uint64_t a, uint64_t b) = 0;
  // Removes both directions. False when they were not friends.
  virtual bool RemoveFriends(uint64_t a, uint64_t b) = 0;
  // Live friends of `uid` with uids above `after_uid`, ordered by uid, at most
  // `limit` (kAllRows: every one).
  virtual std::vector<DirectoryUser> Friends(uint64_t uid, uint64_t after_uid, uint32_t limit) = 0;

  // A new group with `owner` as its owner member; returns its gid (never reused).
  virtual uint64_t CreateGroup(uint64_t owner, const std::string& name,
                               const std::string& desc) = 0;
  virtual std::optional<GroupRecord> FindGroup(uint64_t gid) = 0;
  // The role of `uid` in `gid`, nullopt when not a member.
  virtual std::optional<std::string> RoleOf(uint64_t gid, uint64_t uid) = 0;
  // Adds `uid` as a plain member. nullopt: no such group; false: already a member.
  virtual std::optional<bool> JoinGroup(uint64_t gid, uint64_t uid) = 0;
  virtual LeaveOutcome LeaveGroup(uint64_t gid, uint64_t uid) = 0;
  // The groups `uid` belongs to with gids above `after_gid`, ordered by gid, at
  // most `limit`.
  virtual std::vector<GroupMembership> GroupsOf(uint64_t uid, uint64_t after_gid,
                                                uint32_t limit) = 0;
  // Live members of `gid` with uids above `after_uid`, ordered by uid, at most `limit`.
  virtual std::vector<GroupMember> Members(uint64_t gid, uint64_t after_uid, uint32_t limit) = 0;
};

}  // namespace imbus::actors

// Public. DirectoryStore: the narrow storage interface of the directory service
// (users as others see them, friendships, groups), with a MariaDB implementation
// (MariaDbDirectoryStore) and an in-memory one for logic tests (MemoryDirectoryStore).
// The presence service reads friendships through it too. Implementations are used
// by one thread at a time. "Live" users are those not deleted.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
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

// A pending friend request, as either side lists it: `uid` is the other user.
struct FriendRequest {
  uint64_t uid = 0;
  std::string name;
  int64_t created_ms = 0;
};

// Groups with roles and join policies (issue 18).
inline constexpr const char* kRoleAdmin = "admin";
inline constexpr const char* kPolicyOpen = "open";
inline constexpr const char* kPolicyRequest = "request";
inline constexpr const char* kPolicyInvite = "invite";
inline constexpr const char* kPendingRequest = "request";  // the user asked to join
inline constexpr const char* kPendingInvite = "invite";    // an admin invited the user

struct GroupSettings {
  std::string policy = kPolicyOpen;
  bool muted = false;
};

struct PendingJoin {
  uint64_t uid = 0;
  std::string name;
  std::string kind;  // kPendingRequest or kPendingInvite
  uint64_t by = 0;   // who asked or invited
};

enum class FriendRequestOutcome {
  kRequested,         // a new pending request
  kAlreadyRequested,  // it was pending already
  kBefriended,        // the other side had asked too: friends now
  kAlreadyFriends,
  kBlocked,   // the other user blocks the requester
  kBlocking,  // the requester blocks the other user
};

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

  // Consent (issue 18). A friend request from `from` to `to`.
  virtual FriendRequestOutcome RequestFriend(uint64_t from, uint64_t to, int64_t now_ms) = 0;
  // `me` accepts the pending request of `from`: friends. False: no such request.
  virtual bool AcceptFriend(uint64_t me, uint64_t from) = 0;
  // Drops the pending requests between the two, either way. False: there was none.
  virtual bool DeclineFriend(uint64_t me, uint64_t other) = 0;
  // Pending requests to `uid` (incoming) or from it, by the other's uid above
  // `after_uid`, at most `limit`; live users only.
  virtual std::vector<FriendRequest> FriendRequests(uint64_t uid, bool incoming, uint64_t after_uid,
                                                    uint32_t limit) = 0;
  // `uid` blocks `other`: their friendship and requests end. False: blocked already.
  virtual bool Block(uint64_t uid, uint64_t other, int64_t now_ms) = 0;
  virtual bool Unblock(uint64_t uid, uint64_t other) = 0;
  virtual std::vector<DirectoryUser> Blocked(uint64_t uid, uint64_t after_uid, uint32_t limit) = 0;
  virtual bool AreFriends(uint64_t a, uint64_t b) = 0;
  // Which of `uids` block `uid`.
  virtual std::set<uint64_t> BlockersOf(uint64_t uid, const std::vector<uint64_t>& uids) = 0;

  // Groups (issue 18). nullopt: no such group.
  virtual std::optional<GroupSettings> Settings(uint64_t gid) = 0;
  virtual void SetSettings(uint64_t gid, const GroupSettings& settings) = 0;
  // A pending join of `uid`; false when one is pending already (of either kind).
  virtual bool AddPending(uint64_t gid, uint64_t uid, const std::string& kind, uint64_t by,
                          int64_t now_ms) = 0;
  virtual std::optional<PendingJoin> FindPending(uint64_t gid, uint64_t uid) = 0;
  virtual bool RemovePending(uint64_t gid, uint64_t uid) = 0;
  virtual std::vector<PendingJoin> PendingJoins(uint64_t gid, uint64_t after_uid,
                                                uint32_t limit) = 0;
  // Removes a member (whatever the role); false when not a member.
  virtual bool RemoveMember(uint64_t gid, uint64_t uid) = 0;
  // Sets a member's role; false when not a member.
  virtual bool SetRole(uint64_t gid, uint64_t uid, const std::string& role) = 0;
  // `to` becomes the owner, the old owner `from` an admin.
  virtual void TransferOwner(uint64_t gid, uint64_t from, uint64_t to) = 0;
  // The group, its members and pending joins are gone (its messages stay).
  virtual void Dissolve(uint64_t gid) = 0;
};

}  // namespace imbus::actors

#include "actors/directory/mariadb_directory_store.h"

#include <mysqld_error.h>

#include "actors/db/blocks.h"
#include "actors/db/statements.h"
#include "actors/db/transaction.h"

namespace imbus::actors {
namespace {

DirectoryUser ToUser(const DbRow& row) {
  return DirectoryUser{row.Uint(0).value_or(0), row.Str(1).value_or("")};
}

std::vector<DirectoryUser> ToUsers(const DbResult& r) {
  std::vector<DirectoryUser> out;
  out.reserve(r.rows.size());
  for (const DbRow& row : r.rows) out.push_back(ToUser(row));
  return out;
}

GroupRecord ToGroup(const DbRow& row) {
  return GroupRecord{row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Str(2).value_or(""),
                     row.Uint(3).value_or(0)};
}

}  // namespace

DirectoryStore::UserPage MariaDbDirectoryStore::ListUsers(uint64_t offset, uint32_t limit) {
  UserPage page;
  // One snapshot for the block counts and the rows: the triggers update user_blocks
  // in the same transaction as users, so the two agree exactly.
  Transaction tx(db_, /*read_only=*/true);
  DbResult blocks = db_->Query("SELECT block, live FROM user_blocks WHERE live > 0 ORDER BY block");
  uint64_t before = 0;  // live users in the blocks before the current one
  std::optional<uint64_t> start_block;
  uint64_t skip = 0;
  for (const DbRow& row : blocks.rows) {
    const uint64_t live = static_cast<uint64_t>(row.Int(1).value_or(0));
    if (!start_block && offset < before + live) {
      start_block = row.Uint(0).value_or(0);
      skip = offset - before;  // < live <= kBlockSize
    }
    before += live;
  }
  page.total = before;
  if (start_block && limit > 0) {
    // Starts at the first uid of the block; the range scan continues into the
    // following blocks when the page spans them.
    DbResult r = db_->Query(
        "SELECT uid, name FROM users WHERE uid >= ? AND deleted_at IS NULL"
        " ORDER BY uid LIMIT ?, ?",
        {*start_block * kBlockSize, skip, uint64_t{limit}});
    page.users = ToUsers(r);
  }
  tx.Commit();
  return page;
}

std::optional<DirectoryUser> MariaDbDirectoryStore::FindUser(uint64_t uid) {
  DbResult r =
      db_->Query("SELECT uid, name FROM users WHERE uid = ? AND deleted_at IS NULL", {uid});
  if (r.rows.empty()) return std::nullopt;
  return ToUser(r.rows[0]);
}

std::optional<DirectoryUser> MariaDbDirectoryStore::FindUserByName(const std::string& name) {
  // Deleted users have name NULL, so this finds live users only.
  DbResult r = db_->Query("SELECT uid, name FROM users WHERE name = ?", {std::string_view(name)});
  if (r.rows.empty()) return std::nullopt;
  return ToUser(r.rows[0]);
}

bool MariaDbDirectoryStore::AddFriends(uint64_t a, uint64_t b) {
  try {
    // One statement is atomic: both rows or neither (a duplicate fails it whole).
    db_->Query("INSERT INTO friends (uid, friend_uid) VALUES (?, ?), (?, ?)", {a, b, b, a});
    return true;
  } catch (const DbError& e) {
    if (e.code() == ER_DUP_ENTRY) return false;
    throw;
  }
}

bool MariaDbDirectoryStore::RemoveFriends(uint64_t a, uint64_t b) {
  DbResult r = db_->Query(
      "DELETE FROM friends WHERE (uid = ? AND friend_uid = ?) OR (uid = ? AND friend_uid = ?)",
      {a, b, b, a});
  return r.affected_rows > 0;
}

std::vector<DirectoryUser> MariaDbDirectoryStore::Friends(uint64_t uid, uint64_t after_uid,
                                                          uint32_t limit) {
  return ToUsers(db_->Query(
      "SELECT u.uid, u.name FROM friends f JOIN users u ON u.uid = f.friend_uid"
      " AND u.deleted_at IS NULL WHERE f.uid = ? AND f.friend_uid > ? ORDER BY f.friend_uid"
      " LIMIT ?",
      {uid, after_uid, uint64_t{limit}}));
}

uint64_t MariaDbDirectoryStore::CreateGroup(uint64_t owner, const std::string& name,
                                            const std::string& desc) {
  Transaction tx(db_);
  DbResult r = db_->Query("INSERT INTO chat_groups (name, description, owner_uid) VALUES (?, ?, ?)",
                          {std::string_view(name), std::string_view(desc), owner});
  const uint64_t gid = r.insert_id;
  db_->Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, ?)",
             {gid, owner, std::string_view(kRoleOwner)});
  tx.Commit();
  return gid;
}

std::optional<GroupRecord> MariaDbDirectoryStore::FindGroup(uint64_t gid) {
  DbResult r =
      db_->Query("SELECT gid, name, description, owner_uid FROM chat_groups WHERE gid = ?", {gid});
  if (r.rows.empty()) return std::nullopt;
  return ToGroup(r.rows[0]);
}

std::optional<std::string> MariaDbDirectoryStore::RoleOf(uint64_t gid, uint64_t uid) {
  DbResult r = db_->Query("SELECT role FROM group_members WHERE gid = ? AND uid = ?", {gid, uid});
  if (r.rows.empty()) return std::nullopt;
  return r.rows[0].Str(0);
}

std::optional<bool> MariaDbDirectoryStore::JoinGroup(uint64_t gid, uint64_t uid) {
  // The group row is locked so a join cannot slip in while the last member leaves
  // and the group is deleted (LeaveGroup takes the same lock).
  Transaction tx(db_);
  if (db_->Query("SELECT gid FROM chat_groups WHERE gid = ? FOR UPDATE", {gid}).rows.empty()) {
    return std::nullopt;
  }
  try {
    db_->Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, ?)",
               {gid, uid, std::string_view(kRoleMember)});
  } catch (const DbError& e) {
    if (e.code() == ER_DUP_ENTRY) return false;
    throw;
  }
  tx.Commit();
  return true;
}

LeaveOutcome MariaDbDirectoryStore::LeaveGroup(uint64_t gid, uint64_t uid) {
  Transaction tx(db_);
  if (db_->Query("SELECT gid FROM chat_groups WHERE gid = ? FOR UPDATE", {gid}).rows.empty()) {
    return LeaveOutcome::kNoGroup;
  }
  DbResult role =
      db_->Query("SELECT role FROM group_members WHERE gid = ? AND uid = ?", {gid, uid});
  if (role.rows.empty()) return LeaveOutcome::kNotMember;
  db_->Query("DELETE FROM group_members WHERE gid = ? AND uid = ?", {gid, uid});
  LeaveOutcome outcome = LeaveOutcome::kLeft;
  const bool was_owner = role.rows[0].Str(0) == kRoleOwner;
  // The longest-standing live member inherits; ties (same millisecond) go to the
  // lower uid. Deleted users cannot own.
  DbResult next = db_->Query(
      "SELECT m.uid FROM group_members m JOIN users u ON u.uid = m.uid AND u.deleted_at IS NULL"
      " WHERE m.gid = ? ORDER BY m.joined_at, m.uid LIMIT 1",
      {gid});
  if (next.rows.empty()) {
    db_->Query("DELETE FROM group_members WHERE gid = ?", {gid});
    db_->Query("DELETE FROM chat_groups WHERE gid = ?", {gid});
    outcome = LeaveOutcome::kGroupDeleted;
  } else if (was_owner) {
    const uint64_t heir = next.rows[0].Uint(0).value_or(0);
    db_->Query("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?",
               {std::string_view(kRoleOwner), gid, heir});
    db_->Query("UPDATE chat_groups SET owner_uid = ? WHERE gid = ?", {heir, gid});
    outcome = LeaveOutcome::kOwnerPassed;
  }
  tx.Commit();
  return outcome;
}

std::vector<GroupMembership> MariaDbDirectoryStore::GroupsOf(uint64_t uid, uint64_t after_gid,
                                                             uint32_t limit) {
  DbResult r = db_->Query(
      "SELECT g.gid, g.name, g.description, g.owner_uid, m.role FROM group_members m"
      " JOIN chat_groups g ON g.gid = m.gid WHERE m.uid = ? AND m.gid > ? ORDER BY m.gid"
      " LIMIT ?",
      {uid, after_gid, uint64_t{limit}});
  std::vector<GroupMembership> out;
  out.reserve(r.rows.size());
  for (const DbRow& row : r.rows) out.push_back({ToGroup(row), row.Str(4).value_or("")});
  return out;
}

std::vector<GroupMember> MariaDbDirectoryStore::Members(uint64_t gid, uint64_t after_uid,
                                                        uint32_t limit) {
  DbResult r = db_->Query(
      "SELECT m.uid, u.name, m.role FROM group_members m JOIN users u ON u.uid = m.uid"
      " AND u.deleted_at IS NULL WHERE m.gid = ? AND m.uid > ? ORDER BY m.uid LIMIT ?",
      {gid, after_uid, uint64_t{limit}});
  std::vector<GroupMember> out;
  out.reserve(r.rows.size());
  for (const DbRow& row : r.rows) {
    out.push_back({row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Str(2).value_or("")});
  }
  return out;
}

FriendRequestOutcome MariaDbDirectoryStore::RequestFriend(uint64_t from, uint64_t to,
                                                          int64_t now_ms) {
  // Crossing friend requests (a asks b while b asks a) take their gap and row locks
  // in opposite orders; the loser simply goes again and finds the other's row.
  return RetryDeadlock([&] { return RequestFriendOnce(from, to, now_ms); });
}

FriendRequestOutcome MariaDbDirectoryStore::RequestFriendOnce(uint64_t from, uint64_t to,
                                                              int64_t now_ms) {
  Transaction tx(db_);
  DbResult r = db_->Query(
      "SELECT (SELECT COUNT(*) FROM friends WHERE uid = ? AND friend_uid = ?),"
      "       (SELECT COUNT(*) FROM blocks WHERE uid = ? AND blocked_uid = ?),"
      "       (SELECT COUNT(*) FROM blocks WHERE uid = ? AND blocked_uid = ?)",
      {from, to, to, from, from, to});
  const DbRow& row = r.rows.at(0);
  if (row.Int(0).value_or(0) > 0) return FriendRequestOutcome::kAlreadyFriends;
  if (row.Int(1).value_or(0) > 0) return FriendRequestOutcome::kBlocked;
  if (row.Int(2).value_or(0) > 0) return FriendRequestOutcome::kBlocking;
  // The other side asked first: this request accepts theirs.
  if (db_->Query("DELETE FROM friend_requests WHERE from_uid = ? AND to_uid = ?", {to, from})
          .affected_rows > 0) {
    db_->Query("INSERT IGNORE INTO friends (uid, friend_uid) VALUES (?, ?), (?, ?)",
               {from, to, to, from});
    tx.Commit();
    return FriendRequestOutcome::kBefriended;
  }
  const uint64_t added =
      db_->Query(
             "INSERT IGNORE INTO friend_requests (from_uid, to_uid, created_ms) VALUES (?, ?, ?)",
             {from, to, now_ms})
          .affected_rows;
  tx.Commit();
  return added > 0 ? FriendRequestOutcome::kRequested : FriendRequestOutcome::kAlreadyRequested;
}

bool MariaDbDirectoryStore::AcceptFriend(uint64_t me, uint64_t from) {
  return RetryDeadlock([&] { return AcceptFriendOnce(me, from); });
}

bool MariaDbDirectoryStore::AcceptFriendOnce(uint64_t me, uint64_t from) {
  Transaction tx(db_);
  if (db_->Query("DELETE FROM friend_requests WHERE from_uid = ? AND to_uid = ?", {from, me})
          .affected_rows == 0) {
    return false;
  }
  db_->Query("INSERT IGNORE INTO friends (uid, friend_uid) VALUES (?, ?), (?, ?)",
             {me, from, from, me});
  tx.Commit();
  return true;
}

bool MariaDbDirectoryStore::DeclineFriend(uint64_t me, uint64_t other) {
  return db_->Query(
                "DELETE FROM friend_requests WHERE (from_uid = ? AND to_uid = ?)"
                " OR (from_uid = ? AND to_uid = ?)",
                {other, me, me, other})
             .affected_rows > 0;
}

std::vector<FriendRequest> MariaDbDirectoryStore::FriendRequests(uint64_t uid, bool incoming,
                                                                 uint64_t after_uid,
                                                                 uint32_t limit) {
  DbResult r =
      db_->Query(incoming ? "SELECT u.uid, u.name, r.created_ms FROM friend_requests r JOIN users u"
                            " ON u.uid = r.from_uid AND u.deleted_at IS NULL"
                            " WHERE r.to_uid = ? AND r.from_uid > ? ORDER BY r.from_uid LIMIT ?"
                          : "SELECT u.uid, u.name, r.created_ms FROM friend_requests r JOIN users u"
                            " ON u.uid = r.to_uid AND u.deleted_at IS NULL"
                            " WHERE r.from_uid = ? AND r.to_uid > ? ORDER BY r.to_uid LIMIT ?",
                 {uid, after_uid, uint64_t{limit}});
  std::vector<FriendRequest> out;
  for (const DbRow& row : r.rows) {
    out.push_back({row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Int(2).value_or(0)});
  }
  return out;
}

bool MariaDbDirectoryStore::Block(uint64_t uid, uint64_t other, int64_t now_ms) {
  Transaction tx(db_);
  const uint64_t added =
      db_->Query("INSERT IGNORE INTO blocks (uid, blocked_uid, created_ms) VALUES (?, ?, ?)",
                 {uid, other, now_ms})
          .affected_rows;
  // Before the answer: every SEND from now on looks at uid's blocks (msg_store.cc).
  db_->Query("UPDATE users SET blocks_someone = 1 WHERE uid = ? AND blocks_someone = 0", {uid});
  db_->Query(
      "DELETE FROM friends WHERE (uid = ? AND friend_uid = ?) OR (uid = ? AND friend_uid = ?)",
      {uid, other, other, uid});
  db_->Query(
      "DELETE FROM friend_requests WHERE (from_uid = ? AND to_uid = ?)"
      " OR (from_uid = ? AND to_uid = ?)",
      {uid, other, other, uid});
  tx.Commit();
  return added > 0;
}

bool MariaDbDirectoryStore::Unblock(uint64_t uid, uint64_t other) {
  const bool removed =
      db_->Query("DELETE FROM blocks WHERE uid = ? AND blocked_uid = ?", {uid, other})
          .affected_rows > 0;
  if (removed) {
    db_->Query(
        "UPDATE users SET blocks_someone = EXISTS(SELECT 1 FROM blocks WHERE uid = ?)"
        " WHERE uid = ?",
        {uid, uid});
  }
  return removed;
}

std::vector<DirectoryUser> MariaDbDirectoryStore::Blocked(uint64_t uid, uint64_t after_uid,
                                                          uint32_t limit) {
  return ToUsers(db_->Query(
      "SELECT u.uid, u.name FROM blocks b JOIN users u ON u.uid = b.blocked_uid"
      " AND u.deleted_at IS NULL WHERE b.uid = ? AND b.blocked_uid > ? ORDER BY b.blocked_uid"
      " LIMIT ?",
      {uid, after_uid, uint64_t{limit}}));
}

bool MariaDbDirectoryStore::AreFriends(uint64_t a, uint64_t b) {
  return !db_->Query("SELECT 1 FROM friends WHERE uid = ? AND friend_uid = ?", {a, b}).rows.empty();
}

std::set<uint64_t> MariaDbDirectoryStore::BlockersOf(uint64_t uid,
                                                     const std::vector<uint64_t>& uids) {
  return actors::BlockersOf(db_, uid, uids);
}

std::optional<GroupSettings> MariaDbDirectoryStore::Settings(uint64_t gid) {
  DbResult r = db_->Query("SELECT join_policy, muted FROM chat_groups WHERE gid = ?", {gid});
  if (r.rows.empty()) return std::nullopt;
  return GroupSettings{r.rows[0].Str(0).value_or(kPolicyOpen), r.rows[0].Int(1).value_or(0) != 0};
}

void MariaDbDirectoryStore::SetSettings(uint64_t gid, const GroupSettings& settings) {
  db_->Query("UPDATE chat_groups SET join_policy = ?, muted = ? WHERE gid = ?",
             {std::string_view(settings.policy), int64_t{settings.muted ? 1 : 0}, gid});
}

bool MariaDbDirectoryStore::AddPending(uint64_t gid, uint64_t uid, const std::string& kind,
                                       uint64_t by, int64_t now_ms) {
  return db_->Query(
                "INSERT IGNORE INTO group_pending (gid, uid, kind, by_uid, created_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                {gid, uid, std::string_view(kind), by, now_ms})
             .affected_rows > 0;
}

std::optional<PendingJoin> MariaDbDirectoryStore::FindPending(uint64_t gid, uint64_t uid) {
  DbResult r =
      db_->Query("SELECT kind, by_uid FROM group_pending WHERE gid = ? AND uid = ?", {gid, uid});
  if (r.rows.empty()) return std::nullopt;
  return PendingJoin{uid, "", r.rows[0].Str(0).value_or(""), r.rows[0].Uint(1).value_or(0)};
}

bool MariaDbDirectoryStore::RemovePending(uint64_t gid, uint64_t uid) {
  return db_->Query("DELETE FROM group_pending WHERE gid = ? AND uid = ?", {gid, uid})
             .affected_rows > 0;
}

std::vector<PendingJoin> MariaDbDirectoryStore::PendingJoins(uint64_t gid, uint64_t after_uid,
                                                             uint32_t limit) {
  DbResult r = db_->Query(
      "SELECT p.uid, u.name, p.kind, p.by_uid FROM group_pending p JOIN users u"
      " ON u.uid = p.uid AND u.deleted_at IS NULL WHERE p.gid = ? AND p.uid > ?"
      " ORDER BY p.uid LIMIT ?",
      {gid, after_uid, uint64_t{limit}});
  std::vector<PendingJoin> out;
  for (const DbRow& row : r.rows) {
    out.push_back({row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Str(2).value_or(""),
                   row.Uint(3).value_or(0)});
  }
  return out;
}

bool MariaDbDirectoryStore::RemoveMember(uint64_t gid, uint64_t uid) {
  return db_->Query("DELETE FROM group_members WHERE gid = ? AND uid = ?", {gid, uid})
             .affected_rows > 0;
}

bool MariaDbDirectoryStore::SetRole(uint64_t gid, uint64_t uid, const std::string& role) {
  // found rows, not changed ones: setting the same role is no failure
  DbResult r = db_->Query("SELECT 1 FROM group_members WHERE gid = ? AND uid = ?", {gid, uid});
  if (r.rows.empty()) return false;
  db_->Query("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?",
             {std::string_view(role), gid, uid});
  return true;
}

void MariaDbDirectoryStore::TransferOwner(uint64_t gid, uint64_t from, uint64_t to) {
  Transaction tx(db_);
  db_->Query("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?",
             {std::string_view(kRoleAdmin), gid, from});
  db_->Query("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?",
             {std::string_view(kRoleOwner), gid, to});
  db_->Query("UPDATE chat_groups SET owner_uid = ? WHERE gid = ?", {to, gid});
  tx.Commit();
}

void MariaDbDirectoryStore::Dissolve(uint64_t gid) {
  Transaction tx(db_);
  db_->Query("DELETE FROM group_pending WHERE gid = ?", {gid});
  db_->Query("DELETE FROM group_members WHERE gid = ?", {gid});
  db_->Query("DELETE FROM chat_groups WHERE gid = ?", {gid});
  tx.Commit();
}

}  // namespace imbus::actors

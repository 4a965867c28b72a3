#include "actors/auth/mariadb_auth_store.h"

#include <mysqld_error.h>

namespace imbus::actors {
namespace {
std::optional<UserRecord> ToUser(const DbResult& r) {
  if (r.rows.empty()) return std::nullopt;
  const DbRow& row = r.rows[0];
  return UserRecord{row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Str(2).value_or("")};
}
}  // namespace

std::optional<uint64_t> MariaDbAuthStore::CreateUser(const std::string& name,
                                                     const std::string& pwhash) {
  try {
    DbResult r = db_->Query("INSERT INTO users (name, pwhash) VALUES (?, ?)",
                            {std::string_view(name), std::string_view(pwhash)});
    return r.insert_id;
  } catch (const DbError& e) {
    // The UNIQUE key on the case-insensitive `name_key` decides races between workers.
    if (e.code() == ER_DUP_ENTRY) return std::nullopt;
    throw;
  }
}

std::optional<UserRecord> MariaDbAuthStore::FindUserByName(const std::string& name) {
  return ToUser(
      db_->Query("SELECT uid, name, pwhash FROM users WHERE name = ?", {std::string_view(name)}));
}

std::optional<UserRecord> MariaDbAuthStore::FindUserByUid(uint64_t uid) {
  return ToUser(db_->Query(
      "SELECT uid, name, pwhash FROM users WHERE uid = ? AND deleted_at IS NULL", {uid}));
}

bool MariaDbAuthStore::DeleteUser(uint64_t uid) {
  DbResult r = db_->Query(
      "UPDATE users SET deleted_name = name, name = NULL, deleted_at = CURRENT_TIMESTAMP(3)"
      " WHERE uid = ? AND deleted_at IS NULL",
      {uid});
  // Tokens go even if the update raced with another delete: RESUME also checks the user.
  db_->Query("DELETE FROM tokens WHERE uid = ?", {uid});
  db_->Query("DELETE FROM login_failures WHERE uid = ?", {uid});
  return r.affected_rows == 1;
}

void MariaDbAuthStore::SaveToken(const std::string& token_hash, const TokenRecord& token,
                                 int64_t now_ms, size_t max_devices) {
  // Autocommit statements, each short: no transaction holds gap locks on tokens_uid_device
  // while the next runs. The UNIQUE (uid, device) key makes the replacement one
  // statement, so two logins on one device at once still leave one token.
  db_->Query("DELETE FROM tokens WHERE uid = ? AND expires_at_ms <= ?", {token.uid, now_ms});
  for (int attempt = 1;; ++attempt) {
    try {
      db_->Query(
          "INSERT INTO tokens (token_hash, uid, device, expires_at_ms) VALUES (?, ?, ?, ?)"
          " ON DUPLICATE KEY UPDATE token_hash = VALUES(token_hash),"
          " expires_at_ms = VALUES(expires_at_ms), created_at = CURRENT_TIMESTAMP(3)",
          {std::string_view(token_hash), token.uid, std::string_view(token.device),
           token.expires_at_ms});
      break;
    } catch (const DbError& e) {
      // Parallel upserts of one (uid, device) can deadlock on the unique key; the
      // loser was rolled back and may simply go again.
      if (e.code() != ER_LOCK_DEADLOCK || attempt == 3) throw;
    }
  }
  DbResult n = db_->Query("SELECT COUNT(*) FROM tokens WHERE uid = ?", {token.uid});
  const uint64_t count = n.rows.empty() ? 0 : n.rows[0].Uint(0).value_or(0);
  if (count > max_devices) {
    db_->Query("DELETE FROM tokens WHERE uid = ? ORDER BY expires_at_ms LIMIT ?",
               {token.uid, static_cast<uint64_t>(count - max_devices)});
  }
}

std::optional<TokenRecord> MariaDbAuthStore::FindToken(const std::string& token_hash) {
  DbResult r = db_->Query(
      "SELECT t.uid, t.device, t.expires_at_ms FROM tokens t"
      " JOIN users u ON u.uid = t.uid AND u.deleted_at IS NULL WHERE t.token_hash = ?",
      {std::string_view(token_hash)});
  if (r.rows.empty()) return std::nullopt;
  const DbRow& row = r.rows[0];
  return TokenRecord{row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Int(2).value_or(0)};
}

void MariaDbAuthStore::DeleteTokens(uint64_t uid, const std::string& device) {
  db_->Query("DELETE FROM tokens WHERE uid = ? AND device = ?", {uid, std::string_view(device)});
}

std::optional<FailureRecord> MariaDbAuthStore::FindFailures(uint64_t uid) {
  DbResult r = db_->Query(
      "SELECT failures, next_allowed_ms, last_failure_ms FROM login_failures WHERE uid = ?", {uid});
  if (r.rows.empty()) return std::nullopt;
  const DbRow& row = r.rows[0];
  return FailureRecord{static_cast<uint32_t>(row.Uint(0).value_or(0)), row.Int(1).value_or(0),
                       row.Int(2).value_or(0)};
}

bool MariaDbAuthStore::ReserveAttempt(uint64_t uid, int64_t expected, int64_t next) {
  DbResult r = db_->Query(
      "UPDATE login_failures SET next_allowed_ms = ? WHERE uid = ? AND next_allowed_ms = ?",
      {next, uid, expected});
  return r.affected_rows == 1;
}

uint32_t MariaDbAuthStore::AddFailure(uint64_t uid, int64_t now_ms, int64_t forget_before_ms) {
  // ON DUPLICATE KEY UPDATE assigns left to right, each seeing the columns already
  // assigned: last_failure_ms must come last.
  db_->Query(
      "INSERT INTO login_failures (uid, failures, next_allowed_ms, last_failure_ms)"
      " VALUES (?, 1, 0, ?) ON DUPLICATE KEY UPDATE"
      " failures = IF(last_failure_ms <= ?, 1, failures + 1),"
      " next_allowed_ms = IF(last_failure_ms <= ?, 0, next_allowed_ms),"
      " last_failure_ms = VALUES(last_failure_ms)",
      {uid, now_ms, forget_before_ms, forget_before_ms});
  const std::optional<FailureRecord> f = FindFailures(uid);
  return f ? f->failures : 1;
}

void MariaDbAuthStore::DelayAttempts(uint64_t uid, int64_t next_ms) {
  db_->Query(
      "UPDATE login_failures SET next_allowed_ms = GREATEST(next_allowed_ms, ?) WHERE uid = ?",
      {next_ms, uid});
}

void MariaDbAuthStore::ClearFailures(uint64_t uid) {
  db_->Query("DELETE FROM login_failures WHERE uid = ?", {uid});
}

}  // namespace imbus::actors

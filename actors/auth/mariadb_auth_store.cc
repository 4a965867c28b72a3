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
    // The UNIQUE key on the case-insensitive `name` decides races between workers.
    if (e.code() == ER_DUP_ENTRY) return std::nullopt;
    throw;
  }
}

std::optional<UserRecord> MariaDbAuthStore::FindUserByName(const std::string& name) {
  return ToUser(db_->Query("SELECT uid, name, pwhash FROM users WHERE name = ?",
                           {std::string_view(name)}));
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
  return r.affected_rows == 1;
}

void MariaDbAuthStore::SaveToken(const std::string& token_hash, const TokenRecord& token,
                                 int64_t now_ms) {
  db_->Query("DELETE FROM tokens WHERE uid = ? AND expires_at_ms <= ?", {token.uid, now_ms});
  db_->Query(
      "INSERT INTO tokens (token_hash, uid, device, expires_at_ms) VALUES (?, ?, ?, ?)",
      {std::string_view(token_hash), token.uid, std::string_view(token.device),
       token.expires_at_ms});
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
  db_->Query("DELETE FROM tokens WHERE uid = ? AND device = ?",
             {uid, std::string_view(device)});
}

}  // namespace imbus::actors

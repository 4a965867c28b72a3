#include "actors/db/schema.h"

#include <spdlog/spdlog.h>

namespace imbus::actors {

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "auth: users and login tokens",
       {
           // `name` is NULL once the account is deleted (the name becomes free; NULLs
           // do not collide in a UNIQUE index), the row stays so uids are never reused.
           // ascii_general_ci: names are ASCII and unique case-insensitively.
           "CREATE TABLE IF NOT EXISTS users ("
           " uid BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
           " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_general_ci NULL,"
           " deleted_name VARCHAR(32) CHARACTER SET ascii NULL,"
           " pwhash VARCHAR(255) CHARACTER SET ascii NOT NULL,"
           " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
           " deleted_at TIMESTAMP(3) NULL DEFAULT NULL,"
           " UNIQUE KEY users_name (name)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
           // Tokens are stored as a hash: a leaked table does not log anyone in.
           "CREATE TABLE IF NOT EXISTS tokens ("
           " token_hash BINARY(32) NOT NULL PRIMARY KEY,"
           " uid BIGINT UNSIGNED NOT NULL,"
           " device VARCHAR(64) NOT NULL,"
           " expires_at_ms BIGINT NOT NULL,"
           " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
           " KEY tokens_uid_device (uid, device)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
       }},
      {2,
       "directory: friends, groups, user page index",
       {
           // Friendship is mutual: both directions are stored, written in one
           // transaction, so "my friends" is one index range.
           "CREATE TABLE IF NOT EXISTS friends ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " friend_uid BIGINT UNSIGNED NOT NULL,"
           " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
           " PRIMARY KEY (uid, friend_uid)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
           "CREATE TABLE IF NOT EXISTS chat_groups ("
           " gid BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
           " name VARCHAR(64) NOT NULL,"
           " description VARCHAR(512) NOT NULL DEFAULT '',"
           " owner_uid BIGINT UNSIGNED NOT NULL,"
           " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
           // role: 'owner' or 'member'. (uid, gid) answers "my groups".
           "CREATE TABLE IF NOT EXISTS group_members ("
           " gid BIGINT UNSIGNED NOT NULL,"
           " uid BIGINT UNSIGNED NOT NULL,"
           " role VARCHAR(16) CHARACTER SET ascii NOT NULL,"
           " joined_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
           " PRIMARY KEY (gid, uid),"
           " KEY group_members_uid (uid, gid)"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
           // Live users per block of 1024 uids, kept by triggers: page N of the user
           // list is found by summing block counts (at most total/1024 rows) and then
           // skipping fewer than 1024 rows inside one block, so the cost does not grow
           // with the page number the way OFFSET does.
           "CREATE TABLE IF NOT EXISTS user_blocks ("
           " block BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
           " live INT NOT NULL"
           ") ENGINE=InnoDB",
           "INSERT INTO user_blocks (block, live)"
           " SELECT uid DIV 1024, COUNT(*) FROM users WHERE deleted_at IS NULL GROUP BY uid DIV "
           "1024"
           " ON DUPLICATE KEY UPDATE live = VALUES(live)",
           "CREATE TRIGGER IF NOT EXISTS users_block_insert AFTER INSERT ON users FOR EACH ROW"
           " INSERT INTO user_blocks (block, live) VALUES (NEW.uid DIV 1024, 1)"
           " ON DUPLICATE KEY UPDATE live = live + 1",
           "CREATE TRIGGER IF NOT EXISTS users_block_delete AFTER UPDATE ON users FOR EACH ROW"
           " BEGIN"
           "  IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN"
           "   UPDATE user_blocks SET live = live - 1 WHERE block = OLD.uid DIV 1024;"
           "  END IF;"
           " END",
       }},
      {3,
       "msg: conversations, messages, direct-conversation index, acks",
       {
           // One row per conversation: its counter. A SEND locks the row (sorted by
           // conv within a batch) and takes the next seqs, so seqs are gap-free even
           // with several workers writing to the same conversation. last_ts keeps ts
           // non-decreasing along seq, so ordering by ts never reorders a conversation.
           "CREATE TABLE IF NOT EXISTS conversations ("
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
           " last_seq BIGINT UNSIGNED NOT NULL,"
           " last_ts BIGINT NOT NULL"
           ") ENGINE=InnoDB",
           // text and cmid are stored as bytes: text was checked as UTF-8 by the
           // service, and what the sender sent is what recipients get back.
           // (sender, cmid) is the dedup key; gid is 0 in direct conversations.
           "CREATE TABLE IF NOT EXISTS messages ("
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " seq BIGINT UNSIGNED NOT NULL,"
           " sender BIGINT UNSIGNED NOT NULL,"
           " cmid VARBINARY(64) NOT NULL,"
           " ts BIGINT NOT NULL,"
           " gid BIGINT UNSIGNED NOT NULL DEFAULT 0,"
           " text BLOB NOT NULL,"
           " PRIMARY KEY (conv, seq),"
           " UNIQUE KEY messages_sender_cmid (sender, cmid)"
           ") ENGINE=InnoDB",
           // The direct conversations of each user (both sides), written when the
           // conversation is created; group conversations come from group_members.
           "CREATE TABLE IF NOT EXISTS user_convs ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " PRIMARY KEY (uid, conv)"
           ") ENGINE=InnoDB",
           // The acked position per user (all devices share it), only ever raised.
           "CREATE TABLE IF NOT EXISTS acks ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " acked_seq BIGINT UNSIGNED NOT NULL,"
           " PRIMARY KEY (uid, conv)"
           ") ENGINE=InnoDB",
       }},
      {4,
       "auth: exact names, one token per device, failed password checks per account",
       {
           // Names compare byte for byte (VARBINARY: no case folding, no PAD SPACE, and
           // no collation to clash with a non-ASCII name a client looks up), but stay
           // unique ignoring case through name_key, so "Alice" and "alice" cannot be
           // two people. REGISTER only admits [A-Za-z0-9_.-], so name_key is ASCII.
           "ALTER TABLE users MODIFY name VARBINARY(32) NULL,"
           " ADD COLUMN name_key VARCHAR(32) CHARACTER SET ascii COLLATE ascii_general_ci"
           "  AS (name) PERSISTENT,"
           " DROP KEY users_name,"
           " ADD UNIQUE KEY users_name (name),"
           " ADD UNIQUE KEY users_name_key (name_key)",
           // Devices compare byte for byte too (a LOGIN on "Phone" is not "phone").
           "ALTER TABLE tokens MODIFY device VARBINARY(64) NOT NULL",
           // At most one token per (uid, device): keep the one that lives longest.
           "DELETE t FROM tokens t JOIN tokens n ON n.uid = t.uid AND n.device = t.device"
           " AND (n.expires_at_ms > t.expires_at_ms"
           "  OR (n.expires_at_ms = t.expires_at_ms AND n.token_hash > t.token_hash))",
           "ALTER TABLE tokens DROP KEY tokens_uid_device,"
           " ADD UNIQUE KEY tokens_uid_device (uid, device)",
           // Failed password checks per account, shared by every auth worker and edge
           // (AccountBackoff decides the waits). A success deletes the row.
           "CREATE TABLE IF NOT EXISTS login_failures ("
           " uid BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
           " failures INT UNSIGNED NOT NULL,"
           " next_allowed_ms BIGINT NOT NULL,"
           " last_failure_ms BIGINT NOT NULL"
           ") ENGINE=InnoDB",
       }},
  };
  return kMigrations;
}

namespace {

// Holds a named server lock for the life of the scope (released on the same
// connection; a lost connection releases it on the server by itself).
class SchemaLock {
 public:
  explicit SchemaLock(Db* db) : db_(db) {
    DbResult r = db_->Query("SELECT GET_LOCK(CONCAT('imbus.schema.', DATABASE()), 60)");
    if (r.rows.empty() || r.rows[0].Int(0).value_or(0) != 1) {
      throw DbError(0, "could not take the schema lock within 60 s");
    }
  }
  ~SchemaLock() {
    try {
      db_->Query("SELECT RELEASE_LOCK(CONCAT('imbus.schema.', DATABASE()))");
    } catch (const std::exception&) {
      // The connection is gone, and the lock with it.
    }
  }
  SchemaLock(const SchemaLock&) = delete;
  SchemaLock& operator=(const SchemaLock&) = delete;

 private:
  Db* db_;
};

}  // namespace

int ApplySchema(Db* db) {
  SchemaLock lock(db);
  db->Exec(
      "CREATE TABLE IF NOT EXISTS schema_version ("
      " version INT NOT NULL PRIMARY KEY,"
      " description VARCHAR(200) NOT NULL,"
      " applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
  DbResult r = db->Query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  int current = static_cast<int>(r.rows.at(0).Int(0).value_or(0));
  for (const Migration& m : Migrations()) {
    if (m.version <= current) continue;
    spdlog::info("schema: applying migration {} ({})", m.version, m.description);
    for (std::string_view sql : m.statements) db->Exec(sql);
    db->Query("INSERT INTO schema_version (version, description) VALUES (?, ?)",
              {int64_t{m.version}, m.description});
    current = m.version;
  }
  return current;
}

int PrepareDatabase(Db* db) {
  const std::string quoted = QuoteDatabaseName(db->config().database);
  db->Disconnect();
  db->Connect(/*select_database=*/false);
  db->Exec("CREATE DATABASE IF NOT EXISTS " + quoted +
           " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
  db->Disconnect();
  db->Connect(/*select_database=*/true);
  return ApplySchema(db);
}

}  // namespace imbus::actors

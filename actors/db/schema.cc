#include "actors/db/schema.h"

#include <mysqld_error.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <utility>

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
      {5,
       "push: device tokens, preview setting, the offline push outbox",
       {
           // A device token belongs to one user at a time: registering it again (the
           // phone changed hands, or its user logged in anew) moves it.
           "CREATE TABLE IF NOT EXISTS push_devices ("
           " platform VARBINARY(16) NOT NULL,"
           " token VARBINARY(512) NOT NULL,"
           " uid BIGINT UNSIGNED NOT NULL,"
           " created_ms BIGINT NOT NULL,"
           " PRIMARY KEY (platform, token),"
           " KEY push_devices_uid (uid)"
           ") ENGINE=InnoDB",
           // No row: the default (a preview of the text).
           "CREATE TABLE IF NOT EXISTS push_settings ("
           " uid BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
           " preview TINYINT UNSIGNED NOT NULL"
           ") ENGINE=InnoDB",
           // One notification per (recipient, conv, seq), written in the transaction
           // that stores the message. state 0: to deliver (due_ms: the next try, or
           // the end of a delivering worker's lease); 2: dead letter. Delivered rows
           // are deleted.
           "CREATE TABLE IF NOT EXISTS push_outbox ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " seq BIGINT UNSIGNED NOT NULL,"
           " sender BIGINT UNSIGNED NOT NULL,"
           " state TINYINT UNSIGNED NOT NULL DEFAULT 0,"
           " tries INT UNSIGNED NOT NULL DEFAULT 0,"
           " due_ms BIGINT NOT NULL,"
           " claimed_by VARBINARY(96) NULL,"
           " last_error VARBINARY(255) NULL,"
           " PRIMARY KEY (uid, conv, seq),"
           " KEY push_outbox_due (state, due_ms)"
           ") ENGINE=InnoDB",
       }},
      {6,
       "chat: receipt setting, recall and edit, hidden messages, friend requests, blocks, "
       "group policies",
       {
           // Per-user settings; no row: the defaults (read receipts sent).
           "CREATE TABLE IF NOT EXISTS user_prefs ("
           " uid BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
           " read_receipts TINYINT NOT NULL DEFAULT 1"
           ") ENGINE=InnoDB",
           // A recalled message keeps its row (and seq) with text '' and recalled 1;
           // an edited one carries the new text and the edit time. Both columns have
           // defaults, so SEND's INSERT is unchanged (and the ALTER is instant).
           "ALTER TABLE messages ADD COLUMN IF NOT EXISTS recalled TINYINT NOT NULL DEFAULT 0,"
           " ADD COLUMN IF NOT EXISTS edited_ts BIGINT NOT NULL DEFAULT 0",
           // Messages a user deleted from their own view (MSG/DELETE).
           "CREATE TABLE IF NOT EXISTS hidden_messages ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " seq BIGINT UNSIGNED NOT NULL,"
           " PRIMARY KEY (uid, conv, seq)"
           ") ENGINE=InnoDB",
           // Pending friend requests (ADD_FRIEND), by sender and by target.
           "CREATE TABLE IF NOT EXISTS friend_requests ("
           " from_uid BIGINT UNSIGNED NOT NULL,"
           " to_uid BIGINT UNSIGNED NOT NULL,"
           " created_ms BIGINT NOT NULL,"
           " PRIMARY KEY (from_uid, to_uid),"
           " KEY friend_requests_to (to_uid, from_uid)"
           ") ENGINE=InnoDB",
           // uid blocks blocked_uid (one direction).
           "CREATE TABLE IF NOT EXISTS blocks ("
           " uid BIGINT UNSIGNED NOT NULL,"
           " blocked_uid BIGINT UNSIGNED NOT NULL,"
           " created_ms BIGINT NOT NULL,"
           " PRIMARY KEY (uid, blocked_uid),"
           " KEY blocks_blocked (blocked_uid, uid)"
           ") ENGINE=InnoDB",
           // Groups: who may join ('open', 'request', 'invite') and whether only admins
           // may write (muted). Roles in group_members: 'owner', 'admin', 'member'.
           "ALTER TABLE chat_groups"
           " ADD COLUMN IF NOT EXISTS join_policy VARCHAR(16) CHARACTER SET ascii NOT NULL"
           "  DEFAULT 'open',"
           " ADD COLUMN IF NOT EXISTS muted TINYINT NOT NULL DEFAULT 0",
           // Pending joins: kind 'request' (the user asked; an admin approves) or
           // 'invite' (an admin invited; the user joins).
           "CREATE TABLE IF NOT EXISTS group_pending ("
           " gid BIGINT UNSIGNED NOT NULL,"
           " uid BIGINT UNSIGNED NOT NULL,"
           " kind VARCHAR(8) CHARACTER SET ascii NOT NULL,"
           " by_uid BIGINT UNSIGNED NOT NULL,"
           " created_ms BIGINT NOT NULL,"
           " PRIMARY KEY (gid, uid),"
           " KEY group_pending_uid (uid, gid)"
           ") ENGINE=InnoDB",
       }},
      {7,
       "users: flags for push device tokens and for blocking someone",
       {
           // 1: the user has (or lately had) a push device token. SEND's recipient
           // check reads it from the users row it reads anyway, instead of probing
           // push_devices once per recipient. Set by REGISTER_DEVICE before it
           // answers; recomputed when a token is unregistered; a token that moved to
           // another user leaves it set (a notification row that finds no device is
           // dropped: never one lost).
           "ALTER TABLE users ADD COLUMN IF NOT EXISTS push_device TINYINT NOT NULL DEFAULT 0",
           "UPDATE users u SET push_device = 1"
           " WHERE EXISTS(SELECT 1 FROM push_devices d WHERE d.uid = u.uid)",
           // 1: the user blocks (or lately blocked) someone. SEND's recipient check
           // looks at blocks only for recipients with it set. Set by BLOCK in its
           // transaction; recomputed by UNBLOCK.
           "ALTER TABLE users ADD COLUMN IF NOT EXISTS blocks_someone TINYINT NOT NULL DEFAULT 0",
           "UPDATE users u SET blocks_someone = 1"
           " WHERE EXISTS(SELECT 1 FROM blocks b WHERE b.uid = u.uid)",
       }},
      {8,
       "file: uploads, files, stored contents, and files sent in messages",
       {
           // One row per stored content (the bytes live in the blob store, named by
           // sha256): two files with the same bytes share it.
           "CREATE TABLE IF NOT EXISTS file_blobs ("
           " sha256 BINARY(32) NOT NULL PRIMARY KEY,"
           " size BIGINT UNSIGNED NOT NULL,"
           " created_ms BIGINT NOT NULL"
           ") ENGINE=InnoDB",
           // A finished upload: what FILE_INFO answers. file_id is random (hex), so
           // knowing one id says nothing of the others.
           "CREATE TABLE IF NOT EXISTS files ("
           " file_id VARCHAR(32) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
           " uploader BIGINT UNSIGNED NOT NULL,"
           " name VARBINARY(255) NOT NULL,"
           " size BIGINT UNSIGNED NOT NULL,"
           " mime VARCHAR(127) CHARACTER SET ascii NOT NULL,"
           " sha256 BINARY(32) NOT NULL,"
           " width INT UNSIGNED NULL,"
           " height INT UNSIGNED NULL,"
           " created_ms BIGINT NOT NULL,"
           " KEY files_uploader (uploader),"
           " KEY files_sha256 (sha256)"
           ") ENGINE=InnoDB",
           // An open upload: `stored` bytes are in its partial blob. A user resumes
           // one by starting the same (name, size, sha256) again.
           "CREATE TABLE IF NOT EXISTS file_uploads ("
           " upload_id VARCHAR(32) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
           " uid BIGINT UNSIGNED NOT NULL,"
           " name VARBINARY(255) NOT NULL,"
           " size BIGINT UNSIGNED NOT NULL,"
           " mime VARCHAR(127) CHARACTER SET ascii NOT NULL,"
           " sha256 BINARY(32) NOT NULL,"
           " stored BIGINT UNSIGNED NOT NULL DEFAULT 0,"
           " touched_ms BIGINT NOT NULL,"
           " UNIQUE KEY file_uploads_resume (uid, sha256, size, name),"
           " KEY file_uploads_touched (touched_ms)"
           ") ENGINE=InnoDB",
           // The conversations a file was sent to (MSG/SEND `file`): their members
           // may see it, besides the uploader.
           "CREATE TABLE IF NOT EXISTS file_grants ("
           " file_id VARCHAR(32) CHARACTER SET ascii NOT NULL,"
           " conv VARCHAR(48) CHARACTER SET ascii NOT NULL,"
           " PRIMARY KEY (file_id, conv)"
           ") ENGINE=InnoDB",
           // The file a message carries, if any.
           "ALTER TABLE messages ADD COLUMN IF NOT EXISTS file_id VARCHAR(32) CHARACTER SET ascii "
           "NULL",
       }},
      {9,
       "msg: the members of a direct conversation are its acks rows (user_convs folded in)",
       {
           // From its first message on, each member of a direct conversation has an
           // acks row (acked_seq 0 until they read or send), written in the message's
           // transaction; a user's direct conversations are their acks rows with a
           // 'd:' id. A new conversation writes two rows, not four (two user_convs
           // rows and the sender's acks row before). Run again (an actor killed
           // before the version was recorded), the copy changes nothing, and finds
           // no table to copy once it is dropped.
           "BEGIN NOT ATOMIC"
           "  IF EXISTS(SELECT 1 FROM information_schema.tables"
           "            WHERE table_schema = DATABASE() AND table_name = 'user_convs') THEN"
           "    INSERT IGNORE INTO acks (uid, conv, acked_seq)"
           "      SELECT uid, conv, 0 FROM user_convs;"
           "  END IF;"
           " END",
           "DROP TABLE IF EXISTS user_convs",
       }},
  };
  return kMigrations;
}

namespace {

// The schema lease: a row that one actor at a time holds while it applies migrations.
// Not GET_LOCK: on a Galera cluster that lock exists only on the node that took it,
// and actors starting on two nodes would both run the same ALTER. A row is replicated:
// two actors claiming it at once on different nodes conflict in certification, and one
// of them gets ER_LOCK_DEADLOCK and tries again, finding it held. The lease expires,
// so an actor that dies while holding it blocks the others for at most kLeaseS.
// Seeing the release means seeing every migration before it: DDL (TOI) and rows are
// applied on every node in one total order.
class SchemaLease {
 public:
  SchemaLease(Db* db, std::string holder) : db_(db), holder_(std::move(holder)) {
    // Waiters run no DDL when the table is there: on Galera every CREATE, even one
    // that finds the table, is replicated in total order and aborts the holder's
    // statements on the same objects.
    DbResult exists = db_->Query(
        "SELECT COUNT(*) FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name = 'schema_lock'");
    if (exists.rows.at(0).Uint(0).value_or(0) == 0) {
      db_->Exec(
          "CREATE TABLE IF NOT EXISTS schema_lock ("
          " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
          " holder VARCHAR(128) CHARACTER SET ascii NOT NULL,"
          " expires_at DATETIME(3) NOT NULL"
          ") ENGINE=InnoDB");
    }
    db_->Exec("INSERT IGNORE INTO schema_lock (id, holder, expires_at) VALUES (1, '', NOW(3))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kWaitS);
    bool told = false;
    while (!TryTake()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        throw DbError(0, "could not take the schema lease within " + std::to_string(kWaitS) +
                             " s (another actor is applying migrations)");
      }
      if (!told) spdlog::info("schema: another actor holds the schema lease; waiting");
      told = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ~SchemaLease() {
    // A release can meet a concurrent DDL too (ER_LOCK_DEADLOCK); it is tried again.
    // Should it still fail, the same holder takes the lease back on its next try, and
    // any other actor after kLeaseS.
    for (int attempt = 1;; ++attempt) {
      try {
        db_->Query("UPDATE schema_lock SET holder = '' WHERE id = 1 AND holder = ?",
                   {std::string_view(holder_)});
        return;
      } catch (const std::exception& e) {
        const auto* db_error = dynamic_cast<const DbError*>(&e);
        const bool again = db_error != nullptr && db_error->code() == ER_LOCK_DEADLOCK;
        if (!again || attempt >= 5) {
          spdlog::warn("schema: could not release the schema lease ({}); it expires by itself",
                       e.what());
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
      }
    }
  }
  SchemaLease(const SchemaLease&) = delete;
  SchemaLease& operator=(const SchemaLease&) = delete;

  // Extends the lease (before each migration); throws if it was lost meanwhile.
  void Renew() {
    DbResult r = db_->Query(
        // Always a change (a renewal in the same millisecond as the take would set
        // the same value, and MariaDB counts an unchanged row as not affected).
        "UPDATE schema_lock SET expires_at = GREATEST(NOW(3) + INTERVAL ? SECOND,"
        " expires_at + INTERVAL 0.001 SECOND) WHERE id = 1 AND holder = ?",
        {int64_t{kLeaseS}, std::string_view(holder_)});
    if (r.affected_rows != 1) throw DbError(0, "lost the schema lease");
  }

 private:
  static constexpr int kLeaseS = 300;
  static constexpr int kWaitS = 600;

  bool TryTake() {
    try {
      DbResult r = db_->Query(
          "UPDATE schema_lock SET holder = ?, expires_at = NOW(3) + INTERVAL ? SECOND"
          " WHERE id = 1 AND (holder = '' OR holder = ? OR expires_at < NOW(3))",
          {std::string_view(holder_), int64_t{kLeaseS}, std::string_view(holder_)});
      return r.affected_rows == 1;
    } catch (const DbError& e) {
      if (e.code() == ER_LOCK_DEADLOCK || e.code() == ER_LOCK_WAIT_TIMEOUT) return false;
      throw;
    }
  }

  Db* db_;
  std::string holder_;
};

}  // namespace

std::string NewSchemaLeaseHolder() {
  char host[64] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + std::to_string(rd());
}

int ApplySchema(Db* db, const std::string& holder) {
  SchemaLease lease(db, holder.empty() ? NewSchemaLeaseHolder() : holder);
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
    lease.Renew();
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
  // One holder for every attempt: an attempt that failed while holding the lease (a
  // DDL aborted by a concurrent one, and the release aborted too) takes it back on
  // the next, instead of waiting out the lease like everyone else.
  const std::string holder = NewSchemaLeaseHolder();
  // On Galera, DDL (CREATE DATABASE/TABLE, run in total order on every node) aborts
  // the statements of other actors that touch the same objects: they fail with
  // ER_LOCK_DEADLOCK and start over. Every step before and around the migrations is
  // idempotent, and a migration's DDL is only ever run by the lease holder.
  for (int attempt = 1;; ++attempt) {
    try {
      db->Disconnect();
      db->Connect(/*select_database=*/false);
      DbResult exists =
          db->Query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
                    {std::string_view(db->config().database)});
      if (exists.rows.at(0).Uint(0).value_or(0) == 0) {
        db->Exec("CREATE DATABASE IF NOT EXISTS " + quoted +
                 " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
      }
      db->Disconnect();
      db->Connect(/*select_database=*/true);
      return ApplySchema(db, holder);
    } catch (const DbError& e) {
      if (e.code() != ER_LOCK_DEADLOCK || attempt >= 20 || dynamic_cast<const DbUnavailable*>(&e)) {
        throw;
      }
      spdlog::info("schema: {} (a concurrent DDL); starting over", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
    }
  }
}

}  // namespace imbus::actors

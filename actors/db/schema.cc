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
      // Next: {2, "directory: friends and groups", {...}},
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

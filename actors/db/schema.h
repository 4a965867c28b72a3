// Public. The versioned MariaDB schema of every service, applied at actor startup.
//
// To add tables or columns: append a Migration with the next version to the list in
// schema.cc. Never edit a migration that has shipped. Migrations run in order, each
// once per database (recorded in `schema_version`), also on a Galera cluster:
// concurrent actors, on one node or several, serialize on a lease row (schema_lock),
// so starting many at once is safe.
//
// Galera rules for migrations: every table has a PRIMARY KEY (rows without one are not
// replicated reliably), InnoDB only, and no code relies on AUTO_INCREMENT values being
// dense (a cluster steps them by its size: uids 1, 4, 7, ...).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actors/db/db.h"

namespace imbus::actors {

struct Migration {
  int version;  // 1, 2, 3, ... without gaps
  std::string_view description;
  std::vector<std::string_view> statements;  // DDL, run in order
};

const std::vector<Migration>& Migrations();

// Creates the database if needed (connecting without a default database first),
// then applies pending migrations. Returns the schema version now in place.
// Throws DbError / DbUnavailable.
int PrepareDatabase(Db* db);

// Applies pending migrations on a connection that has its database selected, holding
// the schema lease as `holder` (a new one when empty). A holder that already holds an
// unexpired lease takes it again at once; any other waits for its release or expiry.
int ApplySchema(Db* db, const std::string& holder = {});

// A holder name unique to this call: host/pid/random.
std::string NewSchemaLeaseHolder();

}  // namespace imbus::actors

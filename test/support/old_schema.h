// Internal to tests. A database as an older release left it: the migrations up to
// `version` applied and recorded the way ApplySchema does, so that a test can put
// rows in the old shape and check that ApplySchema carries them forward.
#pragma once

#include <cstdint>
#include <string_view>

#include "actors/db/db.h"
#include "actors/db/schema.h"

namespace imbus::testing {

// `db` is connected with its (empty) database selected.
inline void ApplyMigrationsUpTo(actors::Db* db, int version) {
  db->Exec(
      "CREATE TABLE schema_version (version INT NOT NULL PRIMARY KEY,"
      " description VARCHAR(200) NOT NULL,"
      " applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))");
  for (const actors::Migration& m : actors::Migrations()) {
    if (m.version > version) break;
    for (std::string_view sql : m.statements) db->Exec(sql);
    db->Query("INSERT INTO schema_version (version, description) VALUES (?, ?)",
              {int64_t{m.version}, m.description});
  }
}

}  // namespace imbus::testing

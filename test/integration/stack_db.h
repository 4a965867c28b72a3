// Internal to tests. StackDb: a Db connection to a running stack's own database
// (the actors create its schema at startup), for tests that load or check rows
// directly.
#pragma once

#include "actors/db/db.h"
#include "test/integration/stack.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"

namespace imbus::testing {

inline actors::DbConfig StackDbConfig(const Stack& stack,
                                      const DbConfig& server = SharedMariaDb()) {
  return ActorsDbConfig(stack.database(), server);
}

inline actors::Db StackDb(const Stack& stack, const DbConfig& server = SharedMariaDb()) {
  return actors::Db(StackDbConfig(stack, server));
}

}  // namespace imbus::testing

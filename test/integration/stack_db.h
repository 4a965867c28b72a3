// Internal to tests. StackDb: a Db connection to a running stack's own database
// (the actors create its schema at startup), for tests that load or check rows
// directly. The one place that turns the test server's settings into a DbConfig.
#pragma once

#include "actors/db/db.h"
#include "test/integration/stack.h"
#include "test/support/mariadb.h"

namespace imbus::testing {

inline actors::DbConfig StackDbConfig(const Stack& stack,
                                      const DbConfig& server = SharedMariaDb()) {
  actors::DbConfig c;
  c.socket = server.socket;
  c.host = server.host;
  c.port = server.port;
  c.user = server.user;
  c.password = server.password;
  c.database = stack.database();
  if (!server.hosts.empty()) c.hosts = actors::ParseDbHosts(server.hosts);
  return c;
}

inline actors::Db StackDb(const Stack& stack, const DbConfig& server = SharedMariaDb()) {
  return actors::Db(StackDbConfig(stack, server));
}

}  // namespace imbus::testing

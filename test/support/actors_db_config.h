// Internal to tests. The one place that turns the tests' MariaDB server settings
// (test/support/mariadb.h) into an actors::DbConfig for one database.
#pragma once

#include <string>

#include "actors/db/db_config.h"
#include "test/support/mariadb.h"

namespace imbus::testing {

inline actors::DbConfig ActorsDbConfig(const std::string& database,
                                       const DbConfig& server = SharedMariaDb()) {
  actors::DbConfig c;
  c.socket = server.socket;
  c.host = server.host;
  c.port = server.port;
  c.user = server.user;
  c.password = server.password;
  c.database = database;
  if (!server.hosts.empty()) c.hosts = actors::ParseDbHosts(server.hosts);
  return c;
}

}  // namespace imbus::testing

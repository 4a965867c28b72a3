// Public. Where an actor's MariaDB is (flags --db-*, env IMBUS_DB_*).
#pragma once

#include <cstdint>
#include <string>

namespace imbus::actors {

struct DbConfig {
  std::string socket;  // unix socket; when set, host and port are ignored
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string user = "root";
  std::string password;
  std::string database = "imbus";  // letters, digits, '_' only (checked at startup)
};

}  // namespace imbus::actors

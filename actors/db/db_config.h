// Public. Where an actor's MariaDB is (flags --db-*, env IMBUS_DB_*): one server, or
// the nodes of a Galera cluster (--db-hosts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imbus::actors {

// One server: a unix socket, or host and port.
struct DbEndpoint {
  std::string socket;  // when set, host and port are ignored
  std::string host = "127.0.0.1";
  uint16_t port = 3306;

  std::string ToString() const;  // "/run/mysqld.sock" or "host:3306"
};

struct DbConfig {
  std::string socket;  // unix socket; when set, host and port are ignored
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string user = "root";
  std::string password;
  std::string database = "imbus";  // letters, digits, '_' only (checked at startup)
  // How long one statement may wait for the server (read/write timeout, --db-timeout-s)
  // before the connection counts as lost. Also how long a hung node (paused, or cut
  // off without a reset) holds up the requests on it before they go to the next node.
  unsigned timeout_s = 30;
  // The nodes of one Galera cluster, in order of preference; when set, socket/host/port
  // are ignored. Every connection goes to the first node that is reachable and healthy
  // (in the primary component and Synced), so all actors write through one node.
  std::vector<DbEndpoint> hosts;

  // `hosts`, or the one server of socket/host/port.
  std::vector<DbEndpoint> Endpoints() const;
};

// Parses --db-hosts: comma-separated "host:port", "host" (port 3306), "[v6]:port" or
// an absolute socket path. Throws std::invalid_argument on an empty list or item or a
// bad port.
std::vector<DbEndpoint> ParseDbHosts(std::string_view list);

}  // namespace imbus::actors

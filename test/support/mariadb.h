// Test-only. A private MariaDB server for integration tests: one per test process,
// started from an empty temp dir (mariadb-install-db + mariadbd on a unix socket,
// no TCP) and removed when the process exits. Set IMBUS_TEST_DB_SOCKET to use an
// existing server instead (user root, no password).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace imbus::testing {

struct DbConfig {
  std::string socket;  // unix socket; empty: use host/port
  std::string user = "root";
  std::string password;
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string database;  // empty until the test picks one (NewDatabaseName)
  // The nodes of a Galera cluster as --db-hosts takes them (GaleraCluster); when set,
  // actors get --db-hosts and socket/host/port are ignored.
  std::string hosts;
};

// A mariadbd process on a data directory of its own. Move-only; the destructor
// stops the server and removes the directory. Not thread-safe.
class MariaDbServer {
 public:
  MariaDbServer();  // makes the temp dir and the system tables; does not start
  ~MariaDbServer();
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  // Starts mariadbd and waits (≤ 30 s) until the socket accepts connections.
  // Returns false (with a message on stderr) if it could not.
  bool Start();
  // SIGTERM, then waits for the process (SIGKILL after 20 s). Data stays.
  void Stop();
  // SIGKILL, as a crash or power-off of the server process would; data stays and
  // the next Start() runs InnoDB crash recovery on it.
  void Kill();
  bool running() const { return pid_ > 0; }

  DbConfig config() const;
  const std::string& socket_path() const { return socket_; }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  bool installed_ = false;
};

// The test process's shared server (started on first use) or IMBUS_TEST_DB_SOCKET.
// Aborts the test binary with a message when no server can be had.
const DbConfig& SharedMariaDb();

// "<prefix>_<pid>_<n>": a database name no other test (or process) uses.
std::string NewDatabaseName(const std::string& prefix);

}  // namespace imbus::testing

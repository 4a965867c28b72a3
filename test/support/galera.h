// Test-only. A three-node (or n-node) MariaDB Galera cluster on loopback for tests:
// one temp dir, n mariadbd processes with wsrep_on (a unix socket each for clients;
// gcomm, IST and SST on distinct 127.0.0.1 ports), removed when the object goes.
//
// Start(): node 0 bootstraps a new cluster on a fresh data directory and is stopped
// cleanly; its data directory is copied to the other nodes (so they join by IST in a
// few seconds instead of a full SST); then node 0 bootstraps again and the others
// join one at a time. Failure detection is shortened (suspect 1.5 s, inactive 3 s)
// so a dead node leaves the component in 2-3 s.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "test/support/mariadb.h"

namespace imbus::testing {

class GaleraCluster {
 public:
  explicit GaleraCluster(int nodes = 3);
  ~GaleraCluster();
  GaleraCluster(const GaleraCluster&) = delete;
  GaleraCluster& operator=(const GaleraCluster&) = delete;

  // Forms the cluster (≤ ~60 s; a failed try is repeated once on new ports); false
  // with a message on stderr if it could not.
  bool Start();

  int size() const { return static_cast<int>(nodes_.size()); }
  bool running(int i) const { return nodes_.at(static_cast<size_t>(i)).pid > 0; }
  // SIGKILL, as a crash of the node; its data stays.
  void Kill(int i);
  // Starts a stopped or killed node again: --wsrep-recover for its last committed
  // position, then a start at that position so it catches up by IST. Waits until it
  // is Synced (≤ timeout).
  bool Restart(int i, std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGSTOP / SIGCONT: the node is cut off from the others (and from clients) while
  // paused, like a network partition of one node; resumed, it rejoins.
  void Pause(int i);
  void Resume(int i);

  // A global status variable of node i ("" if it cannot be read).
  std::string Status(int i, const std::string& name) const;
  // wsrep_ready ON, wsrep_local_state 4, Primary, and `size` nodes in its component.
  // False at once if the node's process has exited.
  bool WaitSynced(int i, int cluster_size, std::chrono::milliseconds timeout);
  // Every running node Synced in one primary component of all running nodes, three
  // polls in a row 0.5 s apart (a node paused and resumed claims Synced for a moment
  // before it finds it was left behind); with `same_commit` (only when no one writes)
  // also with the same last committed seqno, i.e. each has applied everything.
  bool WaitConverged(std::chrono::milliseconds timeout, bool same_commit = true) const;
  // A statement on node i as root (no default database); the MariaDB error number, 0
  // if it succeeded, -1 if no connection could be made.
  int Exec(int i, const std::string& sql) const;

  // Node i for clients (its socket, user root).
  DbConfig node_config(int i) const;
  // All nodes as one --db-hosts list, in node order.
  DbConfig cluster_config() const;
  const std::string& log_path(int i) const { return nodes_.at(static_cast<size_t>(i)).log; }
  std::string Logs(int i, size_t tail_bytes = 4000) const;

 private:
  struct Node {
    std::string dir, socket, log;
    int sql_port = 0, gcomm_port = 0, ist_port = 0, sst_port = 0;
    pid_t pid = -1;
  };
  std::vector<std::string> Args(int i) const;
  void NewPorts();     // SQL, gcomm, IST and SST ports for every node
  bool StartOnce();    // one try of Start()
  bool Exited(int i);  // reaps node i if its process has ended (and says so)
  bool Launch(int i, const std::vector<std::string>& extra);
  void Stop(int i);  // SIGTERM and wait

  std::string dir_;
  std::vector<Node> nodes_;
};

}  // namespace imbus::testing

#include "test/support/galera.h"

#include <mysql.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test/support/process.h"

namespace imbus::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kProvider = "/usr/lib/galera/libgalera_smm.so";

bool IsRoot() { return ::geteuid() == 0; }

// Runs argv to completion, output appended to `log`; the exit status (-1: no run).
int RunAndWait(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stdout);
    (void)f;
    ::dup2(::fileno(stdout), 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A connection as root over the socket; nullptr if none could be made.
MYSQL* Open(const std::string& socket) {
  MYSQL* m = mysql_init(nullptr);
  if (m == nullptr) return nullptr;
  unsigned timeout = 2;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
  if (mysql_real_connect(m, nullptr, "root", "", nullptr, 0, socket.c_str(), 0) == nullptr) {
    mysql_close(m);
    return nullptr;
  }
  return m;
}

// True if 127.0.0.1:port can be bound now.
bool Bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A free loopback port below the kernel's ephemeral range. A node binds its IST and
// SST ports only when it joins, seconds after they are chosen; a port from the
// ephemeral range (what bind(0) gives) may meanwhile become the source port of some
// other test's outgoing connection, and the node then fails to start.
int PortBelowEphemeralRange(std::vector<int>* taken) {
  int low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  range >> low;
  const int lo = 10000, hi = std::max(lo + 1000, low) - 1;
  static unsigned seed = static_cast<unsigned>(::getpid()) * 2654435761u ^
                         static_cast<unsigned>(Clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    seed = seed * 1103515245u + 12345u;
    const int port = lo + static_cast<int>((seed >> 8) % static_cast<unsigned>(hi - lo));
    if (std::find(taken->begin(), taken->end(), port) != taken->end()) continue;
    if (!Bindable(port)) continue;
    taken->push_back(port);
    return port;
  }
  return FreePort();
}

}  // namespace

GaleraCluster::GaleraCluster(int nodes) {
  char tmpl[] = "/tmp/imbus-galera.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return;
  dir_ = tmpl;
  nodes_.resize(static_cast<size_t>(nodes));
  NewPorts();
}

void GaleraCluster::NewPorts() {
  std::vector<int> taken;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    n.dir = dir_ + "/node" + std::to_string(i);
    n.socket = n.dir + "/mysqld.sock";
    n.log = n.dir + "/mariadbd.log";
    n.sql_port = PortBelowEphemeralRange(&taken);
    n.gcomm_port = PortBelowEphemeralRange(&taken);
    n.ist_port = PortBelowEphemeralRange(&taken);
    n.sst_port = PortBelowEphemeralRange(&taken);
  }
}

GaleraCluster::~GaleraCluster() {
  for (int i = 0; i < size(); ++i) {
    Resume(i);
    Stop(i);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::vector<std::string> GaleraCluster::Args(int i) const {
  const Node& n = nodes_.at(static_cast<size_t>(i));
  std::string peers;
  for (const Node& p : nodes_) {
    peers += (peers.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(p.gcomm_port);
  }
  const std::string gcomm = "127.0.0.1:" + std::to_string(n.gcomm_port);
  std::vector<std::string> args = {
      "mariadbd", "--no-defaults", "--datadir=" + n.dir + "/data", "--socket=" + n.socket,
      "--port=" + std::to_string(n.sql_port), "--bind-address=127.0.0.1",
      "--pid-file=" + n.dir + "/mariadbd.pid", "--log-error=" + n.log, "--tmpdir=" + n.dir + "/tmp",
      "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
      "--innodb-flush-log-at-trx-commit=2", "--max-connections=200", "--binlog-format=ROW",
      "--innodb-autoinc-lock-mode=2", "--wsrep-on=ON", std::string("--wsrep-provider=") + kProvider,
      "--wsrep-cluster-name=imbus_test", "--wsrep-cluster-address=gcomm://" + peers,
      "--wsrep-node-address=" + gcomm, "--wsrep-node-name=node" + std::to_string(i),
      "--wsrep-node-incoming-address=127.0.0.1:" + std::to_string(n.sql_port),
      "--wsrep-sst-method=mariabackup", "--wsrep-sst-auth=root:",
      "--wsrep-sst-receive-address=127.0.0.1:" + std::to_string(n.sst_port),
      // ist.recv_addr explicitly: its default (gcomm port + 1) may be another node's.
      "--wsrep-provider-options=gmcast.listen_addr=tcp://" + gcomm +
          ";ist.recv_addr=127.0.0.1:" + std::to_string(n.ist_port) +
          ";gcache.size=16M;evs.keepalive_period=PT0.3S;evs.suspect_timeout=PT1.5S"
          ";evs.inactive_timeout=PT3S"};
  if (IsRoot()) args.push_back("--user=root");
  return args;
}

bool GaleraCluster::Launch(int i, const std::vector<std::string>& extra) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  std::vector<std::string> args = Args(i);
  args.insert(args.end(), extra.begin(), extra.end());
  std::error_code ec;
  fs::remove(n.socket, ec);
  fs::create_directories(n.dir + "/tmp", ec);  // its own tmpdir (see MariaDbServer::Start)
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  n.pid = pid;
  return true;
}

void GaleraCluster::Stop(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (::waitpid(n.pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(n.pid, SIGKILL);
      ::waitpid(n.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  n.pid = -1;
}

void GaleraCluster::Kill(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGKILL);
  int status = 0;
  ::waitpid(n.pid, &status, 0);
  n.pid = -1;
}

void GaleraCluster::Pause(int i) {
  const Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid > 0) ::kill(n.pid, SIGSTOP);
}

void GaleraCluster::Resume(int i) {
  const Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid > 0) ::kill(n.pid, SIGCONT);
}

std::string GaleraCluster::Status(int i, const std::string& name) const {
  MYSQL* m = Open(nodes_.at(static_cast<size_t>(i)).socket);
  if (m == nullptr) return "";
  std::string value;
  const std::string sql = "SHOW GLOBAL STATUS LIKE '" + name + "'";
  if (mysql_real_query(m, sql.data(), sql.size()) == 0) {
    if (MYSQL_RES* r = mysql_store_result(m)) {
      if (MYSQL_ROW row = mysql_fetch_row(r); row != nullptr && row[1] != nullptr) value = row[1];
      mysql_free_result(r);
    }
  }
  mysql_close(m);
  return value;
}

int GaleraCluster::Exec(int i, const std::string& sql) const {
  MYSQL* m = Open(nodes_.at(static_cast<size_t>(i)).socket);
  if (m == nullptr) return -1;
  int rc = 0;
  if (mysql_real_query(m, sql.data(), sql.size()) != 0) {
    rc = static_cast<int>(mysql_errno(m));
  } else {
    do {
      if (MYSQL_RES* r = mysql_store_result(m)) mysql_free_result(r);
    } while (mysql_next_result(m) == 0);
  }
  mysql_close(m);
  return rc;
}

bool GaleraCluster::Exited(int i) {
  Node& n = nodes_.at(static_cast<size_t>(i));
  if (n.pid <= 0) return true;
  int status = 0;
  if (::waitpid(n.pid, &status, WNOHANG) != n.pid) return false;
  std::fprintf(stderr, "galera: node %d (pid %d) exited with status %d\n", i,
               static_cast<int>(n.pid), status);
  n.pid = -1;
  return true;
}

bool GaleraCluster::WaitSynced(int i, int cluster_size, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Exited(i)) return false;
    if (Status(i, "wsrep_ready") == "ON" && Status(i, "wsrep_local_state") == "4" &&
        Status(i, "wsrep_cluster_status") == "Primary" &&
        Status(i, "wsrep_cluster_size") == std::to_string(cluster_size)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool GaleraCluster::WaitConverged(std::chrono::milliseconds timeout, bool same_commit) const {
  const auto deadline = Clock::now() + timeout;
  int running_nodes = 0;
  for (int i = 0; i < size(); ++i) running_nodes += running(i) ? 1 : 0;
  int good = 0;
  while (Clock::now() < deadline) {
    bool ok = true;
    std::string committed;
    for (int i = 0; i < size() && ok; ++i) {
      if (!running(i)) continue;
      ok = Status(i, "wsrep_ready") == "ON" && Status(i, "wsrep_local_state") == "4" &&
           Status(i, "wsrep_cluster_status") == "Primary" &&
           Status(i, "wsrep_cluster_size") == std::to_string(running_nodes);
      const std::string c = Status(i, "wsrep_last_committed");
      if (committed.empty()) committed = c;
      ok = ok && (!same_commit || (!c.empty() && c == committed));
    }
    good = ok ? good + 1 : 0;
    if (good >= 3) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return false;
}

bool GaleraCluster::Start() {
  if (dir_.empty() || nodes_.empty()) return false;
  // A second try on fresh ports and data: a start that fails is most often a port
  // someone else took, or a node too slow on a loaded machine.
  for (int attempt = 1; attempt <= 2; ++attempt) {
    if (StartOnce()) return true;
    std::fprintf(stderr, "galera: cluster start %d failed%s\n", attempt,
                 attempt < 2 ? "; trying again on new ports" : "");
    for (int i = 0; i < size(); ++i) {
      Resume(i);
      Stop(i);
    }
    for (const Node& n : nodes_) {
      std::error_code ec;
      fs::remove_all(n.dir, ec);
    }
    NewPorts();
  }
  return false;
}

bool GaleraCluster::StartOnce() {
  const Node& first = nodes_[0];
  fs::create_directories(first.dir);
  std::vector<std::string> install = {"mariadb-install-db",
                                      "--no-defaults",
                                      "--auth-root-authentication-method=normal",
                                      "--datadir=" + first.dir + "/data",
                                      "--skip-test-db",
                                      "--skip-name-resolve"};
  if (IsRoot()) install.push_back("--user=root");
  if (RunAndWait(install, first.dir + "/install.log") != 0) {
    std::fprintf(stderr, "galera: mariadb-install-db failed, see %s/install.log\n",
                 first.dir.c_str());
    return false;
  }
  // Bootstrap once and stop: a data directory with the cluster's state, to seed all.
  if (!Launch(0, {"--wsrep-new-cluster"}) || !WaitSynced(0, 1, std::chrono::seconds(60))) {
    std::fprintf(stderr, "galera: node 0 did not bootstrap:\n%s\n", Logs(0).c_str());
    return false;
  }
  Stop(0);
  for (size_t i = 1; i < nodes_.size(); ++i) {
    fs::create_directories(nodes_[i].dir);
    fs::copy(first.dir + "/data", nodes_[i].dir + "/data", fs::copy_options::recursive);
    std::error_code ec;
    fs::remove(nodes_[i].dir + "/data/gvwstate.dat", ec);
  }
  if (!Launch(0, {"--wsrep-new-cluster"}) || !WaitSynced(0, 1, std::chrono::seconds(60))) {
    std::fprintf(stderr, "galera: node 0 did not bootstrap again:\n%s\n", Logs(0).c_str());
    return false;
  }
  // One joiner at a time: joining together re-forms the cluster for many seconds.
  for (int i = 1; i < size(); ++i) {
    if (!Launch(i, {}) || !WaitSynced(i, i + 1, std::chrono::seconds(60))) {
      std::fprintf(stderr, "galera: node %d did not join:\n%s\n", i, Logs(i).c_str());
      return false;
    }
  }
  return true;
}

bool GaleraCluster::Restart(int i, std::chrono::seconds timeout) {
  if (running(i)) return true;
  Node& n = nodes_.at(static_cast<size_t>(i));
  // The last committed position from InnoDB, so the node asks for IST from there.
  const std::string recover_log = n.dir + "/recover.log";
  std::vector<std::string> args = Args(i);
  for (std::string& a : args) {
    if (a.rfind("--log-error=", 0) == 0) a = "--log-error=" + recover_log;
  }
  args.push_back("--wsrep-recover");
  std::error_code ec;
  fs::remove(recover_log, ec);
  (void)RunAndWait(args, n.dir + "/recover.out");
  std::smatch match;
  const std::string text = ReadFile(recover_log);
  std::vector<std::string> extra;
  static const std::regex kPosition("Recovered position: ([0-9a-f-]+:-?[0-9]+)");
  std::string position;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kPosition);
       it != std::sregex_iterator(); ++it) {
    position = (*it)[1];
  }
  if (!position.empty()) extra.push_back("--wsrep-start-position=" + position);
  if (!Launch(i, extra)) return false;
  int others = 1;
  for (int k = 0; k < size(); ++k) others += (k != i && running(k)) ? 1 : 0;
  return WaitSynced(i, others, timeout);
}

DbConfig GaleraCluster::node_config(int i) const {
  DbConfig c;
  c.socket = nodes_.at(static_cast<size_t>(i)).socket;
  return c;
}

DbConfig GaleraCluster::cluster_config() const {
  DbConfig c = node_config(0);
  for (const Node& n : nodes_) c.hosts += (c.hosts.empty() ? "" : ",") + n.socket;
  return c;
}

std::string GaleraCluster::Logs(int i, size_t tail_bytes) const {
  const std::string text = ReadFile(log_path(i));
  return text.size() > tail_bytes ? text.substr(text.size() - tail_bytes) : text;
}

}  // namespace imbus::testing

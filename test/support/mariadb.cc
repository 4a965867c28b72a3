#include "test/support/mariadb.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace imbus::testing {
namespace {

// Runs argv, output to `log`; returns the exit status (-1 if it could not run).
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

bool SocketAccepts(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string WhoAmI() {
  // mariadbd refuses to run as root unless told --user=root explicitly.
  return ::geteuid() == 0 ? "root" : "";
}

}  // namespace

MariaDbServer::MariaDbServer() {
  char tmpl[] = "/tmp/imbus-mariadb.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "test mariadb: mkdtemp failed: %s\n", std::strerror(errno));
    return;
  }
  dir_ = tmpl;
  socket_ = dir_ + "/mysqld.sock";
  std::vector<std::string> args = {
      "mariadb-install-db",          "--no-defaults",  "--auth-root-authentication-method=normal",
      "--datadir=" + dir_ + "/data", "--skip-test-db", "--skip-name-resolve"};
  if (!WhoAmI().empty()) args.push_back("--user=" + WhoAmI());
  const int rc = RunAndWait(args, dir_ + "/install.log");
  if (rc != 0) {
    std::fprintf(stderr, "test mariadb: mariadb-install-db failed (rc %d), see %s/install.log\n",
                 rc, dir_.c_str());
    return;
  }
  installed_ = true;
}

MariaDbServer::~MariaDbServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool MariaDbServer::Start() {
  if (!installed_) return false;
  if (running()) return true;
  const std::string log = dir_ + "/mariadbd.log";
  // A tmpdir of its own: a starting mariadbd deletes every #sql* file in its tmpdir
  // (left-over temporary tables), including those of the servers of tests running
  // beside it (a SYNC failed with "Error on delete of '/tmp/#sql-temptable-…'").
  std::error_code ec;
  std::filesystem::create_directories(dir_ + "/tmp", ec);
  std::vector<std::string> args = {"mariadbd",
                                   "--no-defaults",
                                   "--datadir=" + dir_ + "/data",
                                   "--socket=" + socket_,
                                   "--pid-file=" + dir_ + "/mariadbd.pid",
                                   "--log-error=" + log,
                                   "--tmpdir=" + dir_ + "/tmp",
                                   "--skip-networking",
                                   "--innodb-buffer-pool-size=32M",
                                   "--innodb-log-file-size=16M",
                                   "--innodb-flush-log-at-trx-commit=2",
                                   "--max-connections=200"};
  if (!WhoAmI().empty()) args.push_back("--user=" + WhoAmI());
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Own process group so a Ctrl-C on the test does not race our cleanup.
    ::setpgid(0, 0);
    // And dies with us if the test binary crashes (the parent is the forking thread:
    // tests start servers from the main thread).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (SocketAccepts(socket_)) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      std::fprintf(stderr, "test mariadb: mariadbd exited early, see %s\n", log.c_str());
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "test mariadb: mariadbd did not open %s in 30 s\n", socket_.c_str());
  Stop();
  return false;
}

void MariaDbServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

void MariaDbServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

DbConfig MariaDbServer::config() const {
  DbConfig c;
  c.socket = socket_;
  return c;
}

namespace {
// Destroyed at exit, which stops the server and removes its directory.
std::unique_ptr<MariaDbServer>& SharedServer() {
  static std::unique_ptr<MariaDbServer> server;
  return server;
}
}  // namespace

const DbConfig& SharedMariaDb() {
  static DbConfig config;
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* s = std::getenv("IMBUS_TEST_DB_SOCKET"); s != nullptr && *s != '\0') {
      config.socket = s;
      return;
    }
    auto server = std::make_unique<MariaDbServer>();
    if (!server->Start()) {
      std::fprintf(stderr,
                   "test mariadb: cannot start a private MariaDB; "
                   "set IMBUS_TEST_DB_SOCKET to use a running one\n");
      std::abort();
    }
    config = server->config();
    SharedServer() = std::move(server);
  });
  return config;
}

std::string NewDatabaseName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

}  // namespace imbus::testing

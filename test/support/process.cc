#include "test/support/process.h"

#include <dirent.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace imbus::testing {

namespace {
std::string TempDir() {
  const char* t = std::getenv("TMPDIR");
  return t != nullptr && *t != '\0' ? t : "/tmp";
}
}  // namespace

Process::~Process() {
  if (pid_ > 0 && !status_) Kill();
}

Process::Process(Process&& other) noexcept
    : pid_(other.pid_), log_path_(std::move(other.log_path_)), status_(other.status_) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) Kill();
    pid_ = other.pid_;
    log_path_ = std::move(other.log_path_);
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

Process Process::Start(const std::string& binary, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env) {
  static std::atomic<int> counter{0};
  Process p;
  const std::string base = binary.substr(binary.find_last_of('/') + 1);
  p.log_path_ = TempDir() + "/imbus-test-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter++) + "-" + base + ".log";
  const int log_fd = ::open(p.log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot create " + p.log_path_);
  std::vector<std::string> argv_s;
  argv_s.push_back(binary);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::setpgid(0, 0);
    ::execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "exec %s: %s\n", binary.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  p.pid_ = pid;
  return p;
}

std::string Process::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t Process::LogSize() const { return Log().size(); }

std::optional<std::string> Process::WaitForLog(const std::string& needle,
                                               std::chrono::milliseconds timeout,
                                               size_t from_offset) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string log = Log();
    if (log.size() > from_offset) {
      const size_t at = log.find(needle, from_offset);
      if (at != std::string::npos) {
        const size_t begin = log.rfind('\n', at);
        const size_t end = log.find('\n', at);
        return log.substr(begin == std::string::npos ? 0 : begin + 1,
                          (end == std::string::npos ? log.size() : end) -
                              (begin == std::string::npos ? 0 : begin + 1));
      }
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    if (pid_ > 0 && !status_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        const_cast<Process*>(this)->status_ = st;
      }
    }
    if (status_) {
      // One last look: the line may have been written just before exit.
      const std::string last = Log();
      if (last.find(needle, from_offset) == std::string::npos) return std::nullopt;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool Process::Running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

std::string Process::State() {
  if (pid_ <= 0) return "not started";
  if (Running()) return "running";
  if (WIFSIGNALED(*status_)) {
    const char* name = sigabbrev_np(WTERMSIG(*status_));
    return std::string("killed by SIG") +
           (name != nullptr ? name : std::to_string(WTERMSIG(*status_)));
  }
  return "exited with status " + std::to_string(WEXITSTATUS(*status_));
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

void Process::Signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool Process::WaitStopped(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
  for (;;) {
    bool all = true, any = false;
    if (DIR* dir = ::opendir(tasks.c_str())) {
      while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream stat(tasks + "/" + e->d_name + "/stat");
        std::string line;
        std::getline(stat, line);
        const size_t close = line.rfind(')');  // the name may hold spaces and parens
        if (close == std::string::npos || close + 2 >= line.size()) continue;
        any = true;
        const char state = line[close + 2];
        if (state != 'T' && state != 't') all = false;
      }
      ::closedir(dir);
    }
    if (any && all) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (status_) return *status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return status_.value_or(-1);
}

void Process::Kill() {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = st;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

int PortFromLogLine(const std::string& line) {
  // The last ':' followed by digits.
  for (size_t i = line.size(); i-- > 0;) {
    if (line[i] != ':') continue;
    size_t j = i + 1;
    int port = 0;
    while (j < line.size() && line[j] >= '0' && line[j] <= '9') {
      port = port * 10 + (line[j] - '0');
      ++j;
    }
    if (j > i + 1) return port;
  }
  return -1;
}

}  // namespace imbus::testing

// The imbus-edge binary: flags and env vars, the "listening on HOST:PORT" line tests
// and scripts read, the READY it sends, and a clean stop on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "test/edge/edge_test_util.h"

namespace imbus::edge::testing {
namespace {

// Runs imbus-edge with `args`, its stderr on a pipe. Killed on destruction.
class EdgeProcess {
 public:
  EdgeProcess(std::vector<std::string> args, std::vector<std::string> env = {}) {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(p[1], 2);
      ::close(p[0]);
      ::close(p[1]);
      for (auto& e : env) ::putenv(e.data());
      std::vector<char*> argv{const_cast<char*>(IMBUS_EDGE_BIN)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(IMBUS_EDGE_BIN, argv.data());
      ::_exit(127);
    }
    ::close(p[1]);
    err_ = p[0];
  }
  ~EdgeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(err_);
  }
  // Reads stderr until a line contains `needle`; returns the rest of that line after
  // it, or nullopt after `timeout`. (No std::regex: GCC 12 warns inside it under
  // the sanitizers.)
  std::optional<std::string> WaitLine(const std::string& needle, Ms timeout = 10000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        line_ = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        const size_t at = line_.find(needle);
        if (at != std::string::npos) return line_.substr(at + needle.size());
      }
      const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd pfd{err_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char b[4096];
      const ssize_t n = ::read(err_, b, sizeof(b));
      if (n <= 0) return std::nullopt;
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // Exit status after SIGTERM, or -1 if it did not exit within `timeout`.
  int Terminate(Ms timeout = 5000ms) {
    ::kill(pid_, SIGTERM);
    return Wait(timeout);
  }
  int Wait(Ms timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string buf_, line_;
};

TEST(EdgeBinaryTest, ListensOnAFreePortAnnouncesItselfAndStopsOnSigterm) {
  FakeBroker broker;
  // The listen address comes from the environment, the rest from flags.
  EdgeProcess edge({"--broker", broker.endpoint(), "--threads", "2", "--name", "edge-bin",
                    "--heartbeat-ms", "200"},
                   {"IMBUS_EDGE_LISTEN=127.0.0.1:0"});
  auto rest = edge.WaitLine("listening on 127.0.0.1:");
  ASSERT_TRUE(rest.has_value()) << "no 'listening on' line";
  const int port = std::atoi(rest->c_str());
  EXPECT_EQ(*rest, std::to_string(port)) << "the port must end the line";
  ASSERT_GT(port, 0);

  for (int thread = 0; thread < 2; ++thread) {
    auto ready = broker.Expect(codec::BusType::kReady);
    ASSERT_TRUE(ready.has_value());
    codec::Ready r;
    ASSERT_TRUE(codec::UnpackMeta(ready->meta, &r));
    EXPECT_EQ(r.role, "edge");
    EXPECT_EQ(r.name, "edge-bin");
    EXPECT_EQ(r.host, "127.0.0.1");
    EXPECT_EQ(r.port, port);
  }

  // Both threads' sockets share the port; a few clients all get answers.
  for (uint32_t i = 1; i <= 8; ++i) {
    TestClient c(static_cast<uint16_t>(port));
    ASSERT_TRUE(c.SendFrame(codec::ToWire(codec::Service::kSys), codec::sys::kPing, i));
    auto f = c.ReadFrame(3000ms);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(CodeOf(*f), 0);
  }
  EXPECT_EQ(edge.Terminate(), 0);
}

TEST(EdgeBinaryTest, HelpAndStartupErrors) {
  EXPECT_EQ(EdgeProcess({"--help"}).Wait(), 0);
  {
    EdgeProcess bad({"--listen", "no-port"});
    EXPECT_TRUE(bad.WaitLine("--listen").has_value());
    EXPECT_EQ(bad.Wait(), 2);
  }
  EXPECT_EQ(EdgeProcess({"--threads", "0", "--listen", "127.0.0.1:0"}).Wait(), 2);
  EXPECT_EQ(EdgeProcess({"--no-such-flag"}).Wait(), 2);
}

}  // namespace
}  // namespace imbus::edge::testing

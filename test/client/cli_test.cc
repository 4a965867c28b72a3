// The `imbus` binary: exit codes and messages, run as a child process against a
// scripted fake server or an unused port. IMBUS_BINARY is $<TARGET_FILE:imbus>.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/codes.h"
#include "codec/commands.h"
#include "test/client/fake_server.h"

namespace imbus::client {
namespace {

using std::chrono::milliseconds;
using testing::FakePeer;
using testing::FakeServer;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs imbus with `args` and a clean environment (`env` plus PATH), feeding `input`
// on stdin (a pipe, so not a terminal). Kills it after 10 s.
RunResult RunImbus(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                   const std::string& input = "") {
  int in[2], out[2], err[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  std::vector<std::string> argv_s = {IMBUS_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s = env;
  env_s.push_back("PATH=/usr/bin:/bin");
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  for (auto& s : env_s) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!input.empty()) {
    EXPECT_EQ(write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  }
  close(in[1]);
  RunResult r;
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(10000);
  pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
    if (poll(p, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  if (open_fds > 0) {
    kill(pid, SIGKILL);
    ADD_FAILURE() << "imbus did not finish within 10 s";
  }
  for (auto& pf : p) {
    if (pf.fd >= 0) close(pf.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string Server(const FakeServer& s) { return "127.0.0.1:" + std::to_string(s.port()); }

TEST(CliTest, HelpListsSubcommandsAndExitsZero) {
  RunResult r = RunImbus({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* word : {"register", "login", "ping", "route", "hello", "--server"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " missing from:\n" << r.out;
  }
  RunResult sub = RunImbus({"login", "--help"});
  EXPECT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_NE(sub.out.find("--uid"), std::string::npos) << sub.out;
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunImbus({}).exit_code, 2);
  EXPECT_EQ(RunImbus({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunImbus({"register"}).exit_code, 2);  // NAME missing
  RunResult both = RunImbus({"login", "alice", "--uid", "3", "--password", "secret1"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("exactly one of NAME or --uid"), std::string::npos) << both.err;
  RunResult bad = RunImbus({"--server", "nonsense", "ping"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'nonsense' is not HOST:PORT"), std::string::npos) << bad.err;
}

TEST(CliTest, UnreachableServerExitsThreeWithAHint) {
  const std::string server = "127.0.0.1:" + std::to_string(testing::UnusedPort());
  RunResult r = RunImbus({"--server", server, "ping"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "imbus: cannot connect to " + server +
                       ": Connection refused \u2014 is the stack up? (scripts/up)\n");
  // The same through the environment, with the flag after the subcommand too.
  RunResult env = RunImbus({"hello"}, {"IMBUS_SERVER=" + server});
  EXPECT_EQ(env.exit_code, 3);
  EXPECT_NE(env.err.find(server), std::string::npos) << env.err;
  RunResult late = RunImbus({"route", "--server", server});
  EXPECT_EQ(late.exit_code, 3) << late.err;
}

TEST(CliTest, RegisterPrintsTheUid) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Body b;
    std::string why;
    ASSERT_TRUE(codec::Body::Parse(req.body, &b, &why));
    EXPECT_EQ(b.GetString("name"), "alice");
    EXPECT_EQ(b.GetString("password"), "from-stdin");
    peer.Respond(req, testing::OkWith("uid", 42));
    peer.WaitClientClosed();
  });
  RunResult r = RunImbus({"--server", Server(server), "register", "alice"}, {}, "from-stdin\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "registered alice as uid 42\n");
}

TEST(CliTest, LoginFailureExitsOneWithTheServersReason) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Body b;
    std::string why;
    ASSERT_TRUE(codec::Body::Parse(req.body, &b, &why));
    EXPECT_EQ(b.GetString("password"), "env-pass");
    EXPECT_EQ(b.GetString("device"), "laptop");
    peer.Respond(req, codec::ErrorBody(codec::Code::kUnauthenticated, "wrong name or password"));
    peer.WaitClientClosed();
  });
  RunResult r = RunImbus({"login", "alice", "--device", "laptop"},
                         {"IMBUS_SERVER=" + Server(server), "IMBUS_PASSWORD=env-pass"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "imbus: login failed: UNAUTHENTICATED: wrong name or password\n");
}

TEST(CliTest, LoginByUidSavesTheTokenPrivately) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    codec::Body b;
    std::string why;
    ASSERT_TRUE(codec::Body::Parse(req.body, &b, &why));
    EXPECT_EQ(b.GetUint("uid"), 42u);
    codec::MapWriter w(4);
    w.Key("code").Int(0);
    w.Key("uid").Uint(42);
    w.Key("name").Str("alice");
    w.Key("token").Str("tok-xyz");
    peer.Respond(req, w.Finish());
    peer.WaitClientClosed();
  });
  const std::filesystem::path home =
      std::filesystem::temp_directory_path() / ("imbus-cli-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(home);
  std::filesystem::create_directories(home);
  RunResult r = RunImbus(
      {"--server", Server(server), "login", "--uid", "42", "--password", "secret1", "--save"},
      {"HOME=" + home.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("logged in as alice (uid 42), token tok-xyz\n"), std::string::npos) << r.out;
  const std::filesystem::path token = home / ".config/imbus/token";
  struct stat st {};
  ASSERT_EQ(stat(token.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream f(token);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "tok-xyz");
  std::filesystem::remove_all(home);
}

TEST(CliTest, PingPrintsRttAndServerTime) {
  FakeServer server([](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.command, codec::sys::kPing);
    peer.Respond(req, testing::OkWith("ts", 1700000000123));
    peer.WaitClientClosed();
  });
  RunResult r = RunImbus({"--server", Server(server), "ping"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("server ts 1700000000123 (2023-11-14T22:13:20.123Z)"), std::string::npos)
      << r.out;
}

TEST(CliTest, SilentServerTimesOutWithExitThree) {
  FakeServer server([](FakePeer& peer) {
    peer.ReadFrame();
    peer.WaitClientClosed();
  });
  RunResult r = RunImbus({"--server", Server(server), "--timeout-ms", "200", "hello"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "imbus: hello failed: TIMEOUT: no response within 200 ms\n");
}

}  // namespace
}  // namespace imbus::client

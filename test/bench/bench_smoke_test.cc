// Runs the built imbus-bench against a Stack: `connect` with 2,000 connections and
// a small `chat` (when the actor binary serves msg), and checks the JSON output.
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test/integration/stack.h"

namespace imbus::testing {
namespace {

// Runs a command line; returns its exit status and (in *out) stdout.
int RunCommand(const std::string& command, std::string* out) {
  std::FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The number under a top-level "key" in imbus-bench's flat JSON.
std::optional<double> JsonNumber(const std::string& json, const std::string& key) {
  const std::regex re("\"" + key + "\": (-?[0-9.]+)");
  std::smatch m;
  if (!std::regex_search(json, m, re)) return std::nullopt;
  return std::stod(m[1].str());
}

bool ActorServes(const std::string& service) {
  std::string out;
  RunCommand(std::string(IMBUS_ACTOR_BIN) + " --list-services 2>/dev/null", &out);
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line == service) return true;
  }
  return false;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/imbus-bench-" + std::to_string(::getpid()) + "-" +
         name;
}

std::string BenchCommand(const Stack& stack, const std::string& args, const std::string& json) {
  // `timeout` bounds a hung run; stderr (progress lines) goes to the test log.
  return "timeout 200 " + std::string(IMBUS_BENCH_BIN) + " " + args +
         " --server 127.0.0.1:" + std::to_string(stack.edge_port()) + " --json " + json + " 2>&1";
}

// The edge inherits our fd limit and needs more than the usual soft 1024.
void RaiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

TEST(BenchSmokeTest, ConnectHoldsTwoThousandLoggedInConnections) {
  RaiseFdLimit();
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2200) GTEST_SKIP() << "fd hard limit " << rl.rlim_cur << " is below 2,200";
  Stack stack;
  stack.StartBroker();
  stack.StartEdge();
  stack.StartActor("auth", 2);
  const std::string json = TempPath("connect.json");
  std::string out;
  const int rc = RunCommand(BenchCommand(stack,
                                         "connect --connections 2000 --duration-s 3 --edge-pid " +
                                             std::to_string(stack.edge(0).pid()),
                                         json),
                            &out);
  const std::string result = ReadFile(json);
  EXPECT_EQ(rc, 0) << out << "\n" << stack.Logs();
  EXPECT_EQ(JsonNumber(result, "logged_in"), 2000) << result;
  EXPECT_EQ(JsonNumber(result, "open_at_end"), 2000) << result;
  EXPECT_EQ(JsonNumber(result, "failed"), 0) << result;
  EXPECT_GT(JsonNumber(result, "edge_bytes_per_conn_logged_in").value_or(0), 0) << result;
  std::remove(json.c_str());
}

TEST(BenchSmokeTest, ChatLosesAndDuplicatesNothing) {
  if (!ActorServes("msg")) {
    GTEST_SKIP() << "imbus-actor --list-services does not include msg yet; chat cannot run";
  }
  Stack stack;
  stack.StartBroker();
  stack.StartEdge();
  stack.StartActor("auth,msg", 2);
  const std::string json = TempPath("chat.json");
  std::string out;
  const int rc = RunCommand(
      BenchCommand(stack, "chat --users 50 --window 2 --duration-s 2 --drain-s 10", json), &out);
  const std::string result = ReadFile(json);
  EXPECT_EQ(rc, 0) << out << "\n" << stack.Logs();
  EXPECT_GT(JsonNumber(result, "acked").value_or(0), 0) << result;
  EXPECT_EQ(JsonNumber(result, "lost"), 0) << result;
  EXPECT_EQ(JsonNumber(result, "duplicates"), 0) << result;
  EXPECT_EQ(JsonNumber(result, "misrouted"), 0) << result;
  EXPECT_EQ(JsonNumber(result, "delivered"), JsonNumber(result, "acked")) << result;
  std::remove(json.c_str());
}

}  // namespace
}  // namespace imbus::testing

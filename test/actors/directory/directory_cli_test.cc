// The `imbus` directory and presence commands against a real stack: tables on
// stdout, login by --user/--password or by the token of `imbus login --save`, exit
// codes for server errors and for having no way to log in.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

class DirectoryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.StartBroker();
    stack_.StartEdge();
    stack_.StartActor("auth,directory,presence,msg");
    ASSERT_TRUE(WaitWorkers(stack_, "presence", 1));
    ASSERT_TRUE(WaitWorkers(stack_, "msg", 1));
    char tmpl[] = "/tmp/imbus_cli_home_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    home_ = tmpl;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_.Logs();
    std::system(("rm -rf '" + home_ + "'").c_str());
  }
  CliRun Imbus(const std::string& args) {
    const std::string cmd =
        "env -i PATH=/usr/bin:/bin HOME='" + home_ +
        "' " IMBUS_BINARY " --server 127.0.0.1:" + std::to_string(stack_.edge_port()) + " " + args +
        " </dev/null 2>&1";
    CliRun r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }
  Stack stack_;
  std::string home_;
};

TEST_F(DirectoryCliTest, CommandsPrintTablesAndFailClearly) {
  const std::string alice = UniqueName("alice");
  const std::string bob = UniqueName("bob");
  ASSERT_EQ(Imbus("register " + alice + " --password password1").exit_code, 0);
  ASSERT_EQ(Imbus("register " + bob + " --password password1").exit_code, 0);
  const std::string as_alice = " --user " + alice + " --password password1";

  // No --user and no saved token: a usage error that says what to do.
  CliRun none = Imbus("friends");
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_NE(none.out.find("not logged in"), std::string::npos) << none.out;

  CliRun users = Imbus("users 1 --size 5" + as_alice);
  EXPECT_EQ(users.exit_code, 0) << users.out;
  EXPECT_NE(users.out.find("UID"), std::string::npos) << users.out;
  EXPECT_NE(users.out.find(bob), std::string::npos) << users.out;
  EXPECT_EQ(Imbus("users 1 --size 500" + as_alice).exit_code, 2);  // checked locally

  CliRun user = Imbus("user " + bob + as_alice);
  EXPECT_EQ(user.exit_code, 0) << user.out;
  EXPECT_NE(user.out.find(bob), std::string::npos) << user.out;
  CliRun missing = Imbus("user nobody_here_x" + as_alice);
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("NOT_FOUND"), std::string::npos) << missing.out;

  CliRun asked = Imbus("friends add " + bob + as_alice);
  EXPECT_EQ(asked.exit_code, 0) << asked.out;
  EXPECT_NE(asked.out.find("friend request sent"), std::string::npos) << asked.out;
  CliRun again = Imbus("friends add " + bob + as_alice);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.out.find("CONFLICT"), std::string::npos) << again.out;

  // Bob logs in with a saved token, sees alice's request and accepts it; his friend
  // list shows alice.
  ASSERT_EQ(Imbus("login " + bob + " --password password1 --save").exit_code, 0);
  CliRun requests = Imbus("friends requests");
  EXPECT_EQ(requests.exit_code, 0) << requests.out;
  EXPECT_NE(requests.out.find(alice), std::string::npos) << requests.out;
  EXPECT_NE(requests.out.find("asks you"), std::string::npos) << requests.out;
  EXPECT_EQ(Imbus("friends accept " + alice).exit_code, 0);
  CliRun friends = Imbus("friends");
  EXPECT_EQ(friends.exit_code, 0) << friends.out;
  EXPECT_NE(friends.out.find(alice), std::string::npos) << friends.out;

  CliRun created = Imbus("groups create crew --desc 'the crew'" + as_alice);
  EXPECT_EQ(created.exit_code, 0) << created.out;
  const size_t at = created.out.find("gid ");
  ASSERT_NE(at, std::string::npos) << created.out;
  const std::string gid = std::to_string(std::stoull(created.out.substr(at + 4)));
  EXPECT_EQ(Imbus("groups join " + gid).exit_code, 0);  // bob, by token
  CliRun members = Imbus("groups members " + gid + as_alice);
  EXPECT_EQ(members.exit_code, 0) << members.out;
  EXPECT_NE(members.out.find("owner"), std::string::npos) << members.out;
  EXPECT_NE(members.out.find(bob), std::string::npos) << members.out;
  CliRun groups = Imbus("groups");
  EXPECT_NE(groups.out.find("crew"), std::string::npos) << groups.out;
  EXPECT_NE(groups.out.find("the crew"), std::string::npos) << groups.out;
  EXPECT_EQ(Imbus("groups leave " + gid).exit_code, 0);
  EXPECT_EQ(Imbus("groups leave " + gid).exit_code, 1);  // FORBIDDEN now

  CliRun online = Imbus("online " + bob + as_alice);
  EXPECT_EQ(online.exit_code, 0) << online.out;
  EXPECT_NE(online.out.find("offline"), std::string::npos) << online.out;
  CliRun peer = Imbus("peer " + bob + as_alice);
  EXPECT_EQ(peer.exit_code, 0) << peer.out;
  EXPECT_NE(peer.out.find("offline"), std::string::npos) << peer.out;
  EXPECT_EQ(Imbus("friends remove " + bob + as_alice).exit_code, 0);
  EXPECT_EQ(Imbus("friends remove " + bob + as_alice).exit_code, 1);
}

// Issue 18 on the command line: `--user` before the command, friend requests and
// blocks, a group by request administered with `groups pending|approve|settings`.
TEST_F(DirectoryCliTest, ConsentAndGroupAdministration) {
  const std::string alice = UniqueName("alice"), bob = UniqueName("bob");
  ASSERT_EQ(Imbus("register " + alice + " --password password1").exit_code, 0);
  ASSERT_EQ(Imbus("register " + bob + " --password password1").exit_code, 0);
  const std::string as_alice = "--user " + alice + " --password password1 ";
  const std::string as_bob = "--user " + bob + " --password password1 ";

  CliRun created = Imbus(as_alice + "groups create club --policy request");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const size_t at = created.out.find("gid ");
  ASSERT_NE(at, std::string::npos) << created.out;
  const std::string gid = std::to_string(std::stoull(created.out.substr(at + 4)));
  CliRun asked = Imbus(as_bob + "groups join " + gid);
  EXPECT_EQ(asked.exit_code, 0) << asked.out;
  EXPECT_NE(asked.out.find("asked to join"), std::string::npos) << asked.out;
  EXPECT_EQ(Imbus(as_bob + "groups members " + gid).exit_code, 1);  // not yet a member
  CliRun pending = Imbus(as_alice + "groups pending " + gid);
  EXPECT_NE(pending.out.find(bob), std::string::npos) << pending.out;
  EXPECT_EQ(Imbus(as_bob + "groups approve " + gid + " " + bob).exit_code, 1);  // FORBIDDEN
  EXPECT_EQ(Imbus(as_alice + "groups approve " + gid + " " + bob).exit_code, 0);
  CliRun members = Imbus(as_bob + "groups members " + gid);
  EXPECT_EQ(members.exit_code, 0) << members.out;
  EXPECT_NE(members.out.find(bob), std::string::npos) << members.out;
  CliRun muted = Imbus(as_alice + "groups settings " + gid + " --muted true");
  EXPECT_NE(muted.out.find("muted"), std::string::npos) << muted.out;
  EXPECT_EQ(Imbus(as_bob + "send --group " + gid + " hello").exit_code, 1);  // muted

  EXPECT_EQ(Imbus(as_alice + "friends block " + bob).exit_code, 0);
  CliRun refused = Imbus(as_bob + "send " + alice + " hi");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("FORBIDDEN"), std::string::npos) << refused.out;
  CliRun blocked = Imbus(as_alice + "friends blocked");
  EXPECT_NE(blocked.out.find(bob), std::string::npos) << blocked.out;
}

}  // namespace
}  // namespace imbus::testing

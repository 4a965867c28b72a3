// `imbus chat` as a user runs it: stdin lines are sent, incoming messages appear on
// stdout as they arrive, missed ones are caught up by SYNC at start and acknowledged.
#include <gtest/gtest.h>

#include "codec/commands.h"
#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using std::chrono::seconds;

TEST(ChatCliTest, SendsTypedLinesAndShowsIncomingMessages) {
  Stack stack;
  stack.StartBroker();
  stack.StartEdge();
  stack.StartActor("auth,directory,msg");
  ASSERT_TRUE(WaitWorkers(stack, "msg", 1));
  TestUser alice = RegisterUser(stack, "alice"), bob = RegisterUser(stack, "bob");
  client::Client b = LoggedIn(stack, bob);
  // Sent while alice is away: chat must show it at start (SYNC).
  ASSERT_TRUE(client::SendToUser(b, alice.uid, "away1", "while you were away").ok());

  const std::string script =
      "{ echo 'hello from chat'; sleep 4; echo '/history 10'; sleep 1; echo '/quit'; } | " +
      std::string(IMBUS_CLIENT_BIN) + " --server 127.0.0.1:" + std::to_string(stack.edge_port()) +
      " chat --user " + alice.name + " --password " + kPassword + " --to " +
      std::to_string(bob.uid);
  Process chat = Process::Start("/bin/bash", {"-c", script});

  // Bob receives the typed line and answers; the answer shows up in the chat.
  std::optional<client::Message> m = WaitMessage(b, seconds(10));
  ASSERT_TRUE(m.has_value()) << chat.Log() << stack.Logs();
  EXPECT_EQ(m->text, "hello from chat");
  EXPECT_EQ(m->from, alice.uid);
  ASSERT_TRUE(client::SendToUser(b, alice.uid, "reply1", "reply to chat").ok());

  ASSERT_TRUE(chat.WaitForLog("reply to chat", seconds(10))) << chat.Log();
  EXPECT_TRUE(chat.WaitForLog("while you were away", seconds(1))) << chat.Log();
  // It leaves on /quit by itself, with status 0.
  EXPECT_EQ(chat.Wait(seconds(15)), std::optional<int>(0)) << chat.Log();
  // /history printed the conversation, with the first message in it again.
  const std::string log = chat.Log();
  EXPECT_NE(log.find("while you were away"), log.rfind("while you were away")) << log;

  // Everything shown was acknowledged: nothing left to SYNC for alice.
  client::Client a = LoggedIn(stack, alice);
  auto s = client::Sync(a);
  ASSERT_TRUE(s.ok()) << s.Describe();
  EXPECT_TRUE(s.value.messages.empty());
}

}  // namespace
}  // namespace imbus::testing

// Issue 19 end to end (real processes): a file message in a group reaches the online
// member as a MESSAGE push with the file object, SYNC and HISTORY through the client
// library carry it, and an outsider can neither send that file on nor (with the FILE
// service) download it. The files row is written as the FILE service writes it after
// UPLOAD_FINISH.
#include <gtest/gtest.h>

#include "codec/commands.h"
#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
using std::chrono::seconds;

class FileMsgFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.StartBroker();
    stack_.StartEdge();
    stack_.StartActor("auth");
    stack_.StartActor("msg");
    ASSERT_TRUE(WaitWorkers(stack_, "auth", 1));
    ASSERT_TRUE(WaitWorkers(stack_, "msg", 1));
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_.Logs();
  }
  std::string AddFile(uint64_t uploader, const std::string& name) {
    actors::Db db = StackDb(stack_, SharedMariaDb());
    const std::string id = "e2e" + UniqueName("f");
    db.Query(
        "INSERT INTO files (file_id, uploader, name, size, mime, sha256, width, height,"
        " created_ms) VALUES (?, ?, ?, 4096, 'image/jpeg', ?, 800, 600, 1000)",
        {std::string_view(id), uploader, std::string_view(name),
         std::string_view(std::string(32, 'z'))});
    return id;
  }
  static client::Response SendFile(client::Client& c, const char* key, uint64_t to,
                                   const std::string& cmid, const std::string& file) {
    codec::MapWriter w(3);
    w.Key(key).Uint(to).Key("cmid").Str(cmid).Key("file").Str(file);
    return c.Call(codec::ToWire(codec::Service::kMsg), codec::msg::kSend, w.Finish());
  }

  Stack stack_;
};

TEST_F(FileMsgFlowTest, AGroupFileMessageIsPushedSyncedAndKeptFromOutsiders) {
  TestUser alice = RegisterUser(stack_, "fa"), bob = RegisterUser(stack_, "fb");
  TestUser carol = RegisterUser(stack_, "fc");
  uint64_t gid = 0;
  {
    actors::Db db = StackDb(stack_, SharedMariaDb());
    gid = CreateGroupInDb(db, {alice.uid, bob.uid});
  }
  const std::string file = AddFile(alice.uid, "beach.jpg");
  client::Client a = LoggedIn(stack_, alice);
  client::Client b = LoggedIn(stack_, bob);
  client::Client c = LoggedIn(stack_, carol);

  client::Response sent = SendFile(a, "gid", gid, "f1", file);
  ASSERT_TRUE(sent.ok()) << sent.Describe();
  std::optional<client::Message> pushed = WaitMessage(b, seconds(5));
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->text, "[file] beach.jpg");
  ASSERT_TRUE(pushed->file.has_value());
  EXPECT_EQ(pushed->file->file, file);
  EXPECT_EQ(pushed->file->name, "beach.jpg");
  EXPECT_EQ(pushed->file->size, 4096u);
  EXPECT_EQ(pushed->file->mime, "image/jpeg");
  EXPECT_EQ(pushed->file->from, alice.uid);
  EXPECT_EQ(pushed->file->width, 800u);
  EXPECT_EQ(pushed->file->height, 600u);

  auto synced = client::Sync(b);
  ASSERT_TRUE(synced.ok()) << synced.Describe();
  ASSERT_EQ(synced.value.messages.size(), 1u);
  ASSERT_TRUE(synced.value.messages[0].file.has_value());
  EXPECT_EQ(synced.value.messages[0].file->sha256, std::string(32, 'z'));
  auto hist = client::History(a, "g:" + std::to_string(gid));
  ASSERT_TRUE(hist.ok()) << hist.Describe();
  ASSERT_EQ(hist.value.size(), 1u);
  ASSERT_TRUE(hist.value[0].file.has_value());

  // bob may pass it on to carol; carol could not send it before that.
  EXPECT_EQ(SendFile(c, "to", alice.uid, "x1", file).code, static_cast<int>(Code::kNotFound));
  ASSERT_TRUE(SendFile(b, "to", carol.uid, "f2", file).ok());
  std::optional<client::Message> to_carol = WaitMessage(c, seconds(5));
  ASSERT_TRUE(to_carol && to_carol->file);
  EXPECT_EQ(to_carol->file->file, file);
  EXPECT_TRUE(SendFile(c, "to", alice.uid, "x2", file).ok());
}

}  // namespace
}  // namespace imbus::testing

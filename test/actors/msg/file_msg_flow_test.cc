// Issue 19 end to end (real processes): a file message in a group reaches the online
// member as a MESSAGE push with the file object, SYNC and HISTORY through the client
// library carry it, and an outsider can neither send that file on nor download it.
// The first test writes the files row as the FILE service does after UPLOAD_FINISH;
// the second uploads through the FILE service and downloads as member and outsider.
#include <gtest/gtest.h>

#include <sodium.h>
#include <stdlib.h>

#include <filesystem>

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

// With the FILE service: uploaded by alice, sent into a group with MSG/SEND `file`;
// a member downloads it, an outsider gets NOT_FOUND for FILE_INFO and DOWNLOAD, and
// so does a member who left the group.
class FileMsgWithFileServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/imbus-file-msg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    StackOptions o;
    o.actor_args = {"--file-dir", dir_ + "/files"};
    stack_ = std::make_unique<Stack>(o);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,msg,file");
    ASSERT_TRUE(WaitWorkers(*stack_, "file", 1));
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1));
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
    stack_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static client::Response FileCall(client::Client& c, uint16_t command, const std::string& body) {
    return c.Call(codec::ToWire(codec::Service::kFile), command, body);
  }
  static std::string Id(const std::string& file) {
    codec::MapWriter w(1);
    w.Key("file").Str(file);
    return w.Finish();
  }
  static std::string Download(const std::string& file, uint64_t offset) {
    codec::MapWriter w(2);
    w.Key("file").Str(file).Key("offset").Uint(offset);
    return w.Finish();
  }

  std::string dir_;
  std::unique_ptr<Stack> stack_;
};

TEST_F(FileMsgWithFileServiceTest, GroupMembersDownloadAndOutsidersGetNotFound) {
  TestUser alice = RegisterUser(*stack_, "ua"), bob = RegisterUser(*stack_, "ub");
  TestUser carol = RegisterUser(*stack_, "uc");
  uint64_t gid = 0;
  {
    actors::Db db = StackDb(*stack_, SharedMariaDb());
    gid = CreateGroupInDb(db, {alice.uid, bob.uid});
  }
  client::Client a = LoggedIn(*stack_, alice);
  client::Client b = LoggedIn(*stack_, bob);
  client::Client c = LoggedIn(*stack_, carol);

  // 100,000 bytes: four chunks, one at a time.
  std::string bytes(100000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 251);
  std::string sha(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(sha.data()),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  codec::MapWriter start(3);
  start.Key("name").Str("notes.bin").Key("size").Uint(bytes.size()).Key("sha256");
  start.packer().pack_bin(static_cast<uint32_t>(sha.size()));
  start.packer().pack_bin_body(sha.data(), static_cast<uint32_t>(sha.size()));
  client::Response up = FileCall(a, codec::file::kUploadStart, start.Finish());
  ASSERT_TRUE(up.ok()) << up.Describe();
  const std::string upload = up.body.GetString("upload").value_or("");
  const uint64_t chunk = up.body.GetUint("chunk").value_or(0);
  ASSERT_GT(chunk, 0u);
  for (uint64_t off = 0; off < bytes.size();) {
    const std::string_view data = std::string_view(bytes).substr(off, chunk);
    codec::MapWriter w(3);
    w.Key("upload").Str(upload).Key("offset").Uint(off).Key("data");
    w.packer().pack_bin(static_cast<uint32_t>(data.size()));
    w.packer().pack_bin_body(data.data(), static_cast<uint32_t>(data.size()));
    client::Response r = FileCall(a, codec::file::kUploadChunk, w.Finish());
    ASSERT_TRUE(r.ok()) << r.Describe();
    off = r.body.GetUint("offset").value_or(0);
  }
  codec::MapWriter fin(1);
  fin.Key("upload").Str(upload);
  client::Response done = FileCall(a, codec::file::kUploadFinish, fin.Finish());
  ASSERT_TRUE(done.ok()) << done.Describe();
  const std::string file = done.body.GetString("file").value_or("");
  ASSERT_FALSE(file.empty());

  // Not sent yet: bob may not see it.
  EXPECT_EQ(FileCall(b, codec::file::kFileInfo, Id(file)).code, static_cast<int>(Code::kNotFound));

  codec::MapWriter send(3);
  send.Key("gid").Uint(gid).Key("cmid").Str("up1").Key("file").Str(file);
  client::Response sent =
      a.Call(codec::ToWire(codec::Service::kMsg), codec::msg::kSend, send.Finish());
  ASSERT_TRUE(sent.ok()) << sent.Describe();
  std::optional<client::Message> pushed = WaitMessage(b, seconds(5));
  ASSERT_TRUE(pushed && pushed->file);
  EXPECT_EQ(pushed->file->file, file);
  EXPECT_EQ(pushed->file->size, bytes.size());
  EXPECT_EQ(pushed->file->sha256, sha);
  EXPECT_EQ(pushed->text, "[file] notes.bin");

  // bob downloads it all, chunk by chunk, by the id in the file object.
  std::string got;
  while (got.size() < bytes.size()) {
    const uint32_t first = b.connection().Send(codec::ToWire(codec::Service::kFile),
                                               codec::file::kDownload, Download(file, got.size()));
    client::Response r = b.connection().WaitResponse(first, seconds(10));
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.body.GetUint("size").value_or(0), bytes.size());
    got += r.body.GetString("data").value_or("");
  }
  EXPECT_EQ(got, bytes);
  EXPECT_TRUE(FileCall(b, codec::file::kFileInfo, Id(file)).ok());

  // carol, never in the group: NOT_FOUND for both, like a file that does not exist.
  EXPECT_EQ(FileCall(c, codec::file::kFileInfo, Id(file)).code, static_cast<int>(Code::kNotFound));
  EXPECT_EQ(FileCall(c, codec::file::kDownload, Download(file, 0)).code,
            static_cast<int>(Code::kNotFound));
  // bob leaves the group: he may see it no more.
  {
    actors::Db db = StackDb(*stack_, SharedMariaDb());
    db.Query("DELETE FROM group_members WHERE gid = ? AND uid = ?", {gid, bob.uid});
  }
  EXPECT_EQ(FileCall(b, codec::file::kDownload, Download(file, 0)).code,
            static_cast<int>(Code::kNotFound));
}

}  // namespace
}  // namespace imbus::testing

// FileService on a real MariaDB and a real blob directory, called directly (the
// offloaded FINISH runs inline): round trips of 0 bytes, 1 byte, one chunk, a few
// chunks and 50 MB with the sha256 checked; dedup (nothing new stored); resume;
// every error of docs/protocol.md 6.9 with "nothing stored" checked on disk and in
// the tables; who may see a file; expiry of open uploads and of orphan partials.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sodium.h>
#include <sys/stat.h>
#include <utime.h>

#include <cstdlib>
#include <functional>

#include "actors/db/schema.h"
#include "actors/file/file_service.h"
#include "codec/commands.h"
#include "test/actors/file/file_test_util.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"

namespace imbus::actors::file {
namespace {

using file_test::Bytes;
using file_test::CountFiles;
using file_test::PutBin;
using file_test::Sha256;

using codec::Code;
namespace cmd = codec::file;

struct Outcome {
  Code code = Code::kOk;
  std::string error;
  codec::Body body;
};

class FileServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    db_ = std::make_unique<Db>(
        imbus::testing::ActorsDbConfig(imbus::testing::NewDatabaseName("file")));
    PrepareDatabase(db_.get());
    char tmpl[] = "/tmp/imbus-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    blobs_ = std::make_shared<FsBlobStore>(dir_ + "/store");
    MakeService(200ull << 20, 0);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void MakeService(uint64_t quota, uint64_t max_size) {
    FileService::Options o;
    o.blobs = blobs_;
    o.quota = quota;
    if (max_size > 0) o.max_size = max_size;
    o.now_ms = [this] { return now_ms_; };
    service_ = std::make_unique<FileService>(db_.get(), std::move(o));
  }

  uint64_t AddUser(const std::string& name) {
    return db_->Query("INSERT INTO users (name, pwhash) VALUES (?, 'x')", {std::string_view(name)})
        .insert_id;
  }
  int64_t Count(const std::string& sql) { return db_->Query(sql).rows.at(0).Int(0).value_or(-1); }
  size_t Partials() { return CountFiles(dir_ + "/store/partial"); }
  size_t Contents() { return CountFiles(dir_ + "/store/content"); }

  Outcome Call(uint64_t uid, uint16_t command, const std::string& body) {
    codec::RequestMeta meta;
    meta.uid = uid;
    meta.service = codec::ToWire(codec::Service::kFile);
    meta.command = command;
    codec::Body parsed;
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(body, &parsed, &error)) << error;
    Request req{meta, parsed};
    Reply reply;
    Outcome out;
    try {
      service_->Handle(req, &reply);
      FinishInline(req, &reply);
    } catch (const RequestError& e) {
      out.code = e.code();
      out.error = e.what();
      return out;
    }
    EXPECT_TRUE(codec::Body::Parse(reply.body, &out.body, &error)) << error;
    // An error written as a body (CONFLICT with its offset).
    out.code = static_cast<Code>(out.body.GetInt("code").value_or(0));
    return out;
  }

  Outcome Start(uint64_t uid, const std::string& name, uint64_t size, const std::string& sha) {
    codec::MapWriter w(4);
    w.Key("name").Str(name).Key("size").Uint(size).Key("mime").Str("application/x-test");
    PutBin(w, "sha256", sha);
    return Call(uid, cmd::kUploadStart, w.Finish());
  }
  Outcome Chunk(uint64_t uid, const std::string& upload, uint64_t offset, std::string_view data) {
    codec::MapWriter w(3);
    w.Key("upload").Str(upload).Key("offset").Uint(offset);
    PutBin(w, "data", data);
    return Call(uid, cmd::kUploadChunk, w.Finish());
  }
  Outcome ById(uint64_t uid, uint16_t command, const char* key, const std::string& id) {
    codec::MapWriter w(1);
    w.Key(key).Str(id);
    return Call(uid, command, w.Finish());
  }
  Outcome Download(uint64_t uid, const std::string& file, uint64_t offset) {
    codec::MapWriter w(2);
    w.Key("file").Str(file).Key("offset").Uint(offset);
    return Call(uid, cmd::kDownload, w.Finish());
  }

  // The whole upload; the file id.
  std::string Upload(uint64_t uid, const std::string& name, const std::string& bytes) {
    Outcome s = Start(uid, name, bytes.size(), Sha256(bytes));
    EXPECT_EQ(s.code, Code::kOk) << s.error;
    const std::string upload = s.body.GetString("upload").value_or("");
    const uint64_t chunk = s.body.GetUint("chunk").value_or(0);
    EXPECT_EQ(chunk, 32768u);
    for (uint64_t off = s.body.GetUint("offset").value_or(0); off < bytes.size();) {
      Outcome c = Chunk(uid, upload, off, std::string_view(bytes).substr(off, chunk));
      EXPECT_EQ(c.code, Code::kOk) << c.error;
      if (c.code != Code::kOk) return "";
      off = c.body.GetUint("offset").value_or(0);
    }
    Outcome f = ById(uid, cmd::kUploadFinish, "upload", upload);
    EXPECT_EQ(f.code, Code::kOk) << f.error;
    EXPECT_EQ(f.body.GetUint("size").value_or(~0ull), bytes.size());
    EXPECT_EQ(f.body.GetString("sha256").value_or(""), Sha256(bytes));
    EXPECT_EQ(f.body.GetString("name").value_or(""), name);
    EXPECT_EQ(f.body.GetUint("from").value_or(0), uid);
    return f.body.GetString("file").value_or("");
  }

  // The whole file by DOWNLOAD; checks each answer's offset and size.
  std::string Fetch(uint64_t uid, const std::string& file) {
    std::string got;
    for (;;) {
      Outcome d = Download(uid, file, got.size());
      EXPECT_EQ(d.code, Code::kOk) << d.error;
      if (d.code != Code::kOk) return got;
      EXPECT_EQ(d.body.GetUint("offset").value_or(~0ull), got.size());
      const std::string data = d.body.GetString("data").value_or("");
      const uint64_t size = d.body.GetUint("size").value_or(0);
      got += data;
      if (got.size() >= size) return got;
      EXPECT_EQ(data.size(), 32768u);  // full chunks before the end
      if (data.empty()) return got;
    }
  }

  std::unique_ptr<Db> db_;
  std::string dir_;
  std::shared_ptr<FsBlobStore> blobs_;
  std::unique_ptr<FileService> service_;
  int64_t now_ms_ = 1'700'000'000'000;
};

TEST_F(FileServiceTest, RoundTripsOfEverySize) {
  const uint64_t a = AddUser("alice");
  for (size_t n : {size_t{0}, size_t{1}, size_t{32768}, size_t{3 * 32768 + 5}}) {
    const std::string bytes = Bytes(n, static_cast<uint32_t>(n));
    const std::string file = Upload(a, "f" + std::to_string(n), bytes);
    ASSERT_FALSE(file.empty());
    const std::string got = Fetch(a, file);
    EXPECT_EQ(got.size(), n);
    EXPECT_EQ(Sha256(got), Sha256(bytes)) << n;
    Outcome info = ById(a, cmd::kFileInfo, "file", file);
    EXPECT_EQ(info.code, Code::kOk);
    EXPECT_EQ(info.body.GetString("mime").value_or(""), "application/x-test");
    EXPECT_FALSE(info.body.Has("width"));
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM files"), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_blobs"), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Contents(), 4u);
  EXPECT_EQ(Partials(), 0u);
  // DOWNLOAD at the end: no bytes; past it: BAD_REQUEST; length out of range too.
  const std::string one = Upload(a, "one", "x");
  Outcome end = Download(a, one, 1);
  EXPECT_EQ(end.code, Code::kOk);
  EXPECT_EQ(end.body.GetString("data").value_or("?"), "");
  EXPECT_EQ(Download(a, one, 2).code, Code::kBadRequest);
  codec::MapWriter w(3);
  w.Key("file").Str(one).Key("offset").Uint(0).Key("length").Uint(32769);
  EXPECT_EQ(Call(a, cmd::kDownload, w.Finish()).code, Code::kBadRequest);
}

TEST_F(FileServiceTest, FiftyMegabytes) {
  const uint64_t a = AddUser("alice");
  const std::string bytes = Bytes(50'000'000, 50);
  const std::string file = Upload(a, "big.bin", bytes);
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(Sha256(Fetch(a, file)), Sha256(bytes));
}

TEST_F(FileServiceTest, SameBytesAreStoredOnce) {
  const uint64_t a = AddUser("alice");
  const uint64_t b = AddUser("bob");
  const std::string bytes = Bytes(100'000, 7);
  const std::string f1 = Upload(a, "one.bin", bytes);
  EXPECT_EQ(Contents(), 1u);
  const std::string f2 = Upload(b, "two.bin", bytes);
  const std::string f3 = Upload(a, "three.bin", bytes);
  EXPECT_NE(f1, f2);
  EXPECT_NE(f2, f3);
  EXPECT_EQ(Contents(), 1u);
  EXPECT_EQ(Partials(), 0u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_blobs"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM files"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Fetch(b, f2), bytes);
  EXPECT_EQ(Fetch(a, f3), bytes);
}

TEST_F(FileServiceTest, ResumeFromTheStoredOffset) {
  const uint64_t a = AddUser("alice");
  const std::string bytes = Bytes(5 * 32768, 3);
  const std::string sha = Sha256(bytes);
  Outcome s = Start(a, "r.bin", bytes.size(), sha);
  const std::string upload = s.body.GetString("upload").value_or("");
  EXPECT_EQ(s.body.GetUint("offset").value_or(1), 0u);
  ASSERT_EQ(Chunk(a, upload, 0, bytes.substr(0, 32768)).code, Code::kOk);
  ASSERT_EQ(Chunk(a, upload, 32768, bytes.substr(32768, 32768)).code, Code::kOk);
  // A resent chunk (at or before the stored offset) overwrites the same bytes.
  Outcome again = Chunk(a, upload, 32768, bytes.substr(32768, 32768));
  EXPECT_EQ(again.code, Code::kOk);
  EXPECT_EQ(again.body.GetUint("offset").value_or(0), 65536u);
  // An empty chunk changes nothing.
  EXPECT_EQ(Chunk(a, upload, 0, "").body.GetUint("offset").value_or(0), 65536u);
  // START again: the same upload, from 65536. Another name is another upload.
  Outcome r = Start(a, "r.bin", bytes.size(), sha);
  EXPECT_EQ(r.body.GetString("upload").value_or(""), upload);
  EXPECT_EQ(r.body.GetUint("offset").value_or(0), 65536u);
  EXPECT_NE(Start(a, "other.bin", bytes.size(), sha).body.GetString("upload").value_or(""), upload);
  // Bytes written but not recorded (a kill between the two) are not counted: the
  // recorded offset is what START answers, and the client sends them again.
  blobs_->WritePartial(upload, 65536, bytes.substr(65536, 32768));
  EXPECT_EQ(Start(a, "r.bin", bytes.size(), sha).body.GetUint("offset").value_or(0), 65536u);
  // A partial shorter than recorded (lost) counts for what is there.
  ::truncate(blobs_->PartialPath(upload).c_str(), 40000);
  EXPECT_EQ(Start(a, "r.bin", bytes.size(), sha).body.GetUint("offset").value_or(0), 40000u);
  for (uint64_t off = 40000; off < bytes.size();) {
    Outcome c = Chunk(a, upload, off, std::string_view(bytes).substr(off, 32768));
    ASSERT_EQ(c.code, Code::kOk) << c.error;
    off = c.body.GetUint("offset").value_or(0);
  }
  Outcome f = ById(a, cmd::kUploadFinish, "upload", upload);
  ASSERT_EQ(f.code, Code::kOk) << f.error;
  EXPECT_EQ(Fetch(a, f.body.GetString("file").value_or("")), bytes);
}

TEST_F(FileServiceTest, ErrorsStoreNothing) {
  const uint64_t a = AddUser("alice");
  const std::string bytes = Bytes(3 * 32768, 9);
  const std::string sha = Sha256(bytes);

  // Over the largest file: TOO_LARGE before anything exists.
  MakeService(200ull << 20, 1'000'000);
  EXPECT_EQ(Start(a, "big", 1'000'001, sha).code, Code::kTooLarge);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Partials(), 0u);
  MakeService(200ull << 20, 0);

  // Bad requests.
  EXPECT_EQ(Start(a, "", 1, sha).code, Code::kBadRequest);
  EXPECT_EQ(Start(a, "a/b", 1, sha).code, Code::kBadRequest);
  EXPECT_EQ(Start(a, "a\nb", 1, sha).code, Code::kBadRequest);
  EXPECT_EQ(Start(a, std::string(256, 'n'), 1, sha).code, Code::kBadRequest);
  EXPECT_EQ(Start(a, "ok", 1, "short").code, Code::kBadRequest);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);

  Outcome s = Start(a, "e.bin", bytes.size(), sha);
  const std::string upload = s.body.GetString("upload").value_or("");
  ASSERT_EQ(Chunk(a, upload, 0, bytes.substr(0, 32768)).code, Code::kOk);
  // Past the stored offset: CONFLICT with where to continue; nothing written.
  Outcome c = Chunk(a, upload, 65536, bytes.substr(65536, 32768));
  EXPECT_EQ(c.code, Code::kConflict);
  EXPECT_EQ(c.body.GetUint("offset").value_or(0), 32768u);
  EXPECT_EQ(blobs_->PartialSize(upload), 32768u);
  // Longer than a chunk; past the size: TOO_LARGE, nothing written.
  EXPECT_EQ(Chunk(a, upload, 32768, Bytes(32769, 1)).code, Code::kTooLarge);
  EXPECT_EQ(blobs_->PartialSize(upload), 32768u);
  ASSERT_EQ(Chunk(a, upload, 32768, bytes.substr(32768, 32768)).code, Code::kOk);
  ASSERT_EQ(Chunk(a, upload, 65536, bytes.substr(65536, 32768)).code, Code::kOk);
  EXPECT_EQ(Chunk(a, upload, bytes.size() - 100, std::string(200, 'x')).code, Code::kTooLarge);
  EXPECT_EQ(blobs_->PartialSize(upload), bytes.size());
  // Other bytes over the first chunk: the sha256 will differ.
  ASSERT_EQ(Chunk(a, upload, 0, Bytes(32768, 1)).code, Code::kOk);
  // Another user's upload, an unknown id: NOT_FOUND.
  const uint64_t b = AddUser("bob");
  EXPECT_EQ(Chunk(b, upload, 0, "x").code, Code::kNotFound);
  EXPECT_EQ(Chunk(a, "0123456789abcdef0123456789abcdef", 0, "x").code, Code::kNotFound);
  EXPECT_EQ(Chunk(a, "../../etc/passwd", 0, "x").code, Code::kNotFound);
  // The bytes now differ from the sha256: MISMATCH, and the upload is gone.
  Outcome f = ById(a, cmd::kUploadFinish, "upload", upload);
  EXPECT_EQ(f.code, Code::kMismatch);
  EXPECT_EQ(Chunk(a, upload, 0, "x").code, Code::kNotFound);
  EXPECT_EQ(ById(a, cmd::kUploadFinish, "upload", upload).code, Code::kNotFound);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM files"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_blobs"), 0);
  EXPECT_EQ(Partials(), 0u);
  EXPECT_EQ(Contents(), 0u);
  EXPECT_EQ(CountFiles(dir_ + "/store/tmp"), 0u);

  // FINISH before every byte is there: MISMATCH, discarded.
  Outcome s2 = Start(a, "e.bin", bytes.size(), sha);
  const std::string up2 = s2.body.GetString("upload").value_or("");
  EXPECT_NE(up2, upload);
  ASSERT_EQ(Chunk(a, up2, 0, bytes.substr(0, 32768)).code, Code::kOk);
  EXPECT_EQ(ById(a, cmd::kUploadFinish, "upload", up2).code, Code::kMismatch);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Partials(), 0u);

  // A chunk after FINISH: NOT_FOUND; the file is there.
  const std::string file = Upload(a, "done.bin", bytes);
  const std::string up3 =
      Start(a, "done2.bin", bytes.size(), sha).body.GetString("upload").value_or("");
  for (uint64_t off = 0; off < bytes.size(); off += 32768) {
    ASSERT_EQ(Chunk(a, up3, off, bytes.substr(off, 32768)).code, Code::kOk);
  }
  ASSERT_EQ(ById(a, cmd::kUploadFinish, "upload", up3).code, Code::kOk);
  EXPECT_EQ(Chunk(a, up3, 0, bytes.substr(0, 10)).code, Code::kNotFound);
  EXPECT_EQ(ById(a, cmd::kUploadFinish, "upload", up3).code, Code::kNotFound);
  EXPECT_EQ(Fetch(a, file), bytes);

  // CANCEL: the upload and its bytes go; twice: NOT_FOUND.
  const std::string up4 =
      Start(a, "c.bin", 10, Sha256("0123456789")).body.GetString("upload").value_or("");
  ASSERT_EQ(Chunk(a, up4, 0, "01234").code, Code::kOk);
  EXPECT_EQ(ById(b, cmd::kUploadCancel, "upload", up4).code, Code::kNotFound);
  EXPECT_EQ(ById(a, cmd::kUploadCancel, "upload", up4).code, Code::kOk);
  EXPECT_EQ(ById(a, cmd::kUploadCancel, "upload", up4).code, Code::kNotFound);
  EXPECT_EQ(Partials(), 0u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
}

TEST_F(FileServiceTest, Quota) {
  MakeService(100'000, 0);
  const uint64_t a = AddUser("alice");
  const std::string bytes = Bytes(60'000, 1);
  ASSERT_FALSE(Upload(a, "a.bin", bytes).empty());
  // 60,000 stored + 50,000 > 100,000: refused before anything exists.
  EXPECT_EQ(Start(a, "b.bin", 50'000, Sha256(Bytes(50'000, 2))).code, Code::kQuotaExceeded);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 0);
  EXPECT_EQ(Partials(), 0u);
  // Open uploads count: 60,000 + 30,000 open + 20,000 > 100,000.
  ASSERT_EQ(Start(a, "c.bin", 30'000, Sha256(Bytes(30'000, 3))).code, Code::kOk);
  EXPECT_EQ(Start(a, "d.bin", 20'000, Sha256(Bytes(20'000, 4))).code, Code::kQuotaExceeded);
  EXPECT_EQ(Start(a, "d.bin", 10'000, Sha256(Bytes(10'000, 4))).code, Code::kOk);
  // Resuming an open upload is no new use.
  EXPECT_EQ(Start(a, "c.bin", 30'000, Sha256(Bytes(30'000, 3))).code, Code::kOk);
  // Deduplicated bytes still count for the user; another user has their own quota.
  EXPECT_EQ(Start(a, "e.bin", 60'000, Sha256(bytes)).code, Code::kQuotaExceeded);
  const uint64_t b = AddUser("bob");
  EXPECT_FALSE(Upload(b, "a.bin", bytes).empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 2);
}

// A hostile account cannot fill the tables with empty files or open uploads: each
// counts 4 KiB toward the quota, and at most 64 uploads are open at once.
TEST_F(FileServiceTest, EmptyFilesCountAndOpenUploadsAreFew) {
  MakeService(5 * 4096, 0);
  const uint64_t a = AddUser("alice");
  for (int i = 0; i < 5; ++i) {
    ASSERT_FALSE(Upload(a, "empty" + std::to_string(i), "").empty()) << i;
  }
  EXPECT_EQ(Start(a, "one-more", 0, Sha256("")).code, Code::kQuotaExceeded);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM files"), 5);

  MakeService(0, 0);  // no quota: the open-upload cap still holds
  const uint64_t b = AddUser("bob");
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(Start(b, "open" + std::to_string(i), 1, Sha256("x")).code, Code::kOk) << i;
  }
  EXPECT_EQ(Start(b, "open64", 1, Sha256("x")).code, Code::kQuotaExceeded);
  EXPECT_EQ(Start(b, "open3", 1, Sha256("x")).code, Code::kOk) << "resuming one is no new one";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 64);
}

TEST_F(FileServiceTest, OnlyUploaderAndConversationMembersSeeAFile) {
  const uint64_t a = AddUser("alice");
  const uint64_t b = AddUser("bob");
  const uint64_t c = AddUser("carol");
  const uint64_t d = AddUser("dave");
  const std::string file = Upload(a, "secret.txt", "the secret");
  auto sees = [&](uint64_t uid) {
    const Code info = ById(uid, cmd::kFileInfo, "file", file).code;
    const Code dl = Download(uid, file, 0).code;
    EXPECT_EQ(info, dl);
    return info == Code::kOk;
  };
  EXPECT_TRUE(sees(a));
  EXPECT_FALSE(sees(b));
  EXPECT_EQ(ById(b, cmd::kFileInfo, "file", file).code, Code::kNotFound);
  // No such file: the same answer.
  EXPECT_EQ(ById(a, cmd::kFileInfo, "file", "0123456789abcdef0123456789abcdef").code,
            Code::kNotFound);
  // Sent to a's chat with b: b sees it, c does not.
  db_->Query("INSERT INTO file_grants (file_id, conv) VALUES (?, ?)",
             {std::string_view(file),
              std::string_view("d:" + std::to_string(a) + ":" + std::to_string(b))});
  EXPECT_TRUE(sees(b));
  EXPECT_FALSE(sees(c));
  // Sent to a group: its members now, not who left.
  const uint64_t gid =
      db_->Query("INSERT INTO chat_groups (name, owner_uid) VALUES ('g', ?)", {a}).insert_id;
  for (uint64_t uid : {a, c}) {
    db_->Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, 'member')", {gid, uid});
  }
  db_->Query("INSERT INTO file_grants (file_id, conv) VALUES (?, ?)",
             {std::string_view(file), std::string_view("g:" + std::to_string(gid))});
  EXPECT_TRUE(sees(c));
  EXPECT_FALSE(sees(d));
  db_->Query("DELETE FROM group_members WHERE gid = ? AND uid = ?", {gid, c});
  EXPECT_FALSE(sees(c));
}

TEST_F(FileServiceTest, ImagesGetTheirSize) {
  const uint64_t a = AddUser("alice");
  // A GIF header is enough for the parser: 640 x 480.
  std::string gif("GIF89a\x80\x02\xe0\x01\x00\x00\x00;", 14);
  const std::string file = Upload(a, "pic.gif", gif);
  Outcome info = ById(a, cmd::kFileInfo, "file", file);
  EXPECT_EQ(info.body.GetUint("width").value_or(0), 640u);
  EXPECT_EQ(info.body.GetUint("height").value_or(0), 480u);
}

TEST_F(FileServiceTest, ExpiryDiscardsIdleUploads) {
  // The fake clock at the wall clock: partials' mtimes are compared with it.
  now_ms_ = static_cast<int64_t>(std::time(nullptr)) * 1000;
  const uint64_t a = AddUser("alice");
  const std::string bytes = Bytes(70'000, 5);
  const std::string old_up =
      Start(a, "old.bin", bytes.size(), Sha256(bytes)).body.GetString("upload").value_or("");
  ASSERT_EQ(Chunk(a, old_up, 0, bytes.substr(0, 32768)).code, Code::kOk);
  now_ms_ += 3'600'000;  // an hour later
  const std::string new_up =
      Start(a, "new.bin", bytes.size(), Sha256(bytes)).body.GetString("upload").value_or("");
  ASSERT_EQ(Chunk(a, new_up, 0, bytes.substr(0, 32768)).code, Code::kOk);
  // An orphan partial (its row deleted by a FINISH killed before it removed the
  // partial), last written two hours ago.
  blobs_->WritePartial("orphan", 0, "left behind");
  struct utimbuf old_times {
    std::time(nullptr) - 7200, std::time(nullptr) - 7200
  };
  ASSERT_EQ(::utime(blobs_->PartialPath("orphan").c_str(), &old_times), 0);
  ASSERT_EQ(::utime(blobs_->PartialPath(old_up).c_str(), &old_times), 0);
  ASSERT_EQ(Partials(), 3u);

  FileStore store(db_.get());
  // A TTL of 30 min on the fake clock: the old upload goes; the orphan by its mtime.
  EXPECT_EQ(ExpireUploads(store, *blobs_, now_ms_ - 1'800'000), 1u);
  EXPECT_EQ(ExpireUploads(store, *blobs_, now_ms_ - 1'800'000), 0u);
  EXPECT_EQ(Chunk(a, old_up, 32768, bytes.substr(32768, 32768)).code, Code::kNotFound);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM file_uploads"), 1);
  // The partial of the open upload stays even with an old mtime... (only by row age)
  EXPECT_EQ(Partials(), 1u);
  EXPECT_EQ(blobs_->PartialSize(new_up), 32768u);
  // ... and its start again after expiry would be a new upload from 0.
  Outcome again = Start(a, "old.bin", bytes.size(), Sha256(bytes));
  EXPECT_NE(again.body.GetString("upload").value_or(""), old_up);
  EXPECT_EQ(again.body.GetUint("offset").value_or(1), 0u);
}

}  // namespace
}  // namespace imbus::actors::file

// The FILE service through the real stack (broker, two edges, two file actors sharing
// one blob directory, MariaDB): an 8 MB upload survives a kill -9 of a file actor
// mid-chunk (another one is started), a kill of the edge the client is on (it goes
// on through the other edge) and a dropped client connection: each time
// UPLOAD_START resumes from the stored offset, FINISH gets the right hash, and
// nothing is downloadable (nor any content on disk) before FINISH. Then the file is
// downloaded, pipelined, by a user it was sent to, through the other edge.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sodium.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "codec/commands.h"
#include "test/actors/file/file_test_util.h"
#include "test/integration/stack_db.h"
#include "test/integration/stack_util.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"

namespace imbus::testing {
namespace {

using file_test::CountFiles;
using file_test::PutBin;
using file_test::Sha256;

std::string Bytes(size_t n) { return file_test::Bytes(n, 12345); }

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace cmd = codec::file;
constexpr uint16_t kFile = codec::ToWire(codec::Service::kFile);
constexpr uint64_t kChunk = 32768;

class FileFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/imbus-files-flow-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    StackOptions o;
    o.request_timeout_ms = 4000;
    o.actor_args = {"--file-dir", dir_ + "/files"};
    o.actor_args.insert(o.actor_args.end(), extra_actor_args_.begin(), extra_actor_args_.end());
    stack_ = std::make_unique<Stack>(o);
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence,msg", 2);
    file_actors_.push_back(stack_->StartActor("file"));
    file_actors_.push_back(stack_->StartActor("file"));
    ASSERT_TRUE(WaitWorkers(*stack_, "file", 2));
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 2));
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
    stack_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  // A logged-in client on `edge`.
  client::Client LoggedIn(const std::string& name, size_t edge, bool new_user) {
    client::Client c = Connected(*stack_, edge, seconds(6));
    if (new_user) {
      EXPECT_TRUE(c.Register(name, "password1").ok());
    }
    auto s = c.Login(name, "password1");
    EXPECT_TRUE(s.ok()) << s.Describe();
    return c;
  }

  client::Response Start(client::Client& c, const std::string& bytes) {
    codec::MapWriter w(3);
    w.Key("name").Str("movie.bin").Key("size").Uint(bytes.size());
    PutBin(w, "sha256", Sha256(bytes));
    return c.Call(kFile, cmd::kUploadStart, w.Finish());
  }
  client::Response Chunk(client::Client& c, const std::string& upload, uint64_t off,
                         std::string_view data) {
    codec::MapWriter w(3);
    w.Key("upload").Str(upload).Key("offset").Uint(off);
    PutBin(w, "data", data);
    return c.Call(kFile, cmd::kUploadChunk, w.Finish());
  }
  client::Response ById(client::Client& c, uint16_t command, const char* key,
                        const std::string& id) {
    codec::MapWriter w(1);
    w.Key(key).Str(id);
    return c.Call(kFile, command, w.Finish());
  }

  // Sends chunks from `*offset` until `until` (or the end) or the first failure;
  // *acked is the offset of the last answer. A chunk refused by the edge's file byte
  // rate (RATE_LIMITED) is sent again after its retry_ms. False on a failure.
  bool Send(client::Client& c, const std::string& upload, const std::string& bytes, uint64_t* acked,
            uint64_t until) {
    while (*acked < std::min<uint64_t>(until, bytes.size())) {
      client::Response r = Chunk(c, upload, *acked, std::string_view(bytes).substr(*acked, kChunk));
      if (r.code == static_cast<int>(codec::Code::kRateLimited)) {
        ++rate_limited_;
        std::this_thread::sleep_for(milliseconds(std::max<int64_t>(r.retry_ms, 1)));
        continue;
      }
      if (!r.ok()) return false;
      *acked = r.body.GetUint("offset").value_or(0);
      progress_.store(*acked);
    }
    return true;
  }

  // The whole file, `depth` DOWNLOADs in flight at a time; one refused by the edge's
  // rate limit (RATE_LIMITED) is asked again after its retry_ms.
  std::string Fetch(client::Client& c, const std::string& file, uint64_t size, int depth) {
    std::string got(size, '\0');
    const uint64_t chunks = (size + kChunk - 1) / kChunk;
    for (uint64_t first = 0; first < chunks; first += depth) {
      std::vector<std::pair<uint64_t, uint32_t>> sent;
      for (uint64_t k = first; k < std::min<uint64_t>(chunks, first + depth); ++k) {
        codec::MapWriter w(2);
        w.Key("file").Str(file).Key("offset").Uint(k * kChunk);
        sent.emplace_back(k * kChunk, c.connection().Send(kFile, cmd::kDownload, w.Finish()));
      }
      for (const auto& [off, id] : sent) {
        client::Response d = c.connection().WaitResponse(id, seconds(10));
        while (d.code == static_cast<int>(codec::Code::kRateLimited)) {
          ++rate_limited_;
          std::this_thread::sleep_for(milliseconds(std::max<int64_t>(d.retry_ms, 1)));
          codec::MapWriter w(2);
          w.Key("file").Str(file).Key("offset").Uint(off);
          d = c.Call(kFile, cmd::kDownload, w.Finish());
        }
        EXPECT_TRUE(d.ok()) << d.Describe();
        if (!d.ok()) return got;
        EXPECT_EQ(d.body.GetUint("offset").value_or(~0ull), off);
        EXPECT_EQ(d.body.GetUint("size").value_or(0), size);
        const std::string data = d.body.GetString("data").value_or("");
        got.replace(off, data.size(), data);
      }
    }
    return got;
  }

  std::vector<std::string> extra_actor_args_;
  std::string dir_;
  int rate_limited_ = 0;
  std::unique_ptr<Stack> stack_;
  std::vector<size_t> file_actors_;
  std::atomic<uint64_t> progress_{0};
};

TEST_F(FileFlowTest, UploadSurvivesKillsAndResumesFromTheStoredOffset) {
  const std::string bytes = Bytes(8 << 20);
  const std::string alice = UniqueName("fa");
  const std::string bob = UniqueName("fb");
  client::Client c = LoggedIn(alice, 0, true);
  client::Client b = LoggedIn(bob, 1, true);
  client::Response s = Start(c, bytes);
  ASSERT_TRUE(s.ok()) << s.Describe();
  const std::string upload = s.body.GetString("upload").value_or("");
  ASSERT_EQ(s.body.GetUint("chunk").value_or(0), kChunk);
  uint64_t acked = 0;

  // 1. kill -9 of both file actors while chunks flow (so one dies with a chunk in
  // hand); start another. Chunks that fail
  // are followed by START, which says where to go on: at the last answered offset,
  // or one chunk after it (stored, but its answer died with the actor).
  std::thread killer([&] {
    while (progress_.load() < (1u << 20)) std::this_thread::sleep_for(milliseconds(2));
    stack_->actor(file_actors_[0]).Kill();
    stack_->actor(file_actors_[1]).Kill();
  });
  bool failed = !Send(c, upload, bytes, &acked, 3u << 20);
  killer.join();
  EXPECT_TRUE(failed);
  file_actors_.push_back(stack_->StartActor("file", 2));
  for (int tries = 0; tries < 40; ++tries) {
    client::Response r = Start(c, bytes);
    if (!r.ok()) {
      std::this_thread::sleep_for(milliseconds(250));
      continue;
    }
    EXPECT_EQ(r.body.GetString("upload").value_or(""), upload);
    const uint64_t offset = r.body.GetUint("offset").value_or(0);
    EXPECT_GE(offset, acked);
    EXPECT_LE(offset, acked + kChunk);
    acked = offset;
    if (Send(c, upload, bytes, &acked, 3u << 20)) break;
    failed = true;
  }
  EXPECT_GE(acked, 3u << 20);
  std::cerr << "after the actor kill: at " << acked << (failed ? " (chunks failed)" : "") << "\n";
  EXPECT_EQ(CountFiles(dir_ + "/files/content"), 0u);

  // 2. Kill (and restart) the edge the client is on: it goes on through the other.
  stack_->RestartEdge(0);
  EXPECT_FALSE(Chunk(c, upload, acked, std::string_view(bytes).substr(acked, kChunk)).ok());
  c = LoggedIn(alice, 1, false);
  client::Response r2 = Start(c, bytes);
  ASSERT_TRUE(r2.ok()) << r2.Describe();
  EXPECT_EQ(r2.body.GetString("upload").value_or(""), upload);
  const uint64_t at2 = r2.body.GetUint("offset").value_or(0);
  EXPECT_GE(at2, acked);  // a chunk in flight when the edge died may have been stored
  EXPECT_LE(at2, acked + kChunk);
  acked = at2;
  ASSERT_TRUE(Send(c, upload, bytes, &acked, 6u << 20));

  // 3. Drop the client connection between chunks: START answers exactly where it was.
  c = client::Client();
  c = LoggedIn(alice, 0, false);
  client::Response r3 = Start(c, bytes);
  ASSERT_TRUE(r3.ok()) << r3.Describe();
  EXPECT_EQ(r3.body.GetUint("offset").value_or(0), acked);

  // Nothing of it can be seen before FINISH: there is no file, and no content.
  EXPECT_EQ(CountFiles(dir_ + "/files/content"), 0u);
  {
    actors::Db db = StackDb(*stack_);
    EXPECT_EQ(db.Query("SELECT COUNT(*) FROM files").rows.at(0).Int(0).value_or(-1), 0);
  }
  ASSERT_TRUE(Send(c, upload, bytes, &acked, bytes.size()));
  client::Response f = ById(c, cmd::kUploadFinish, "upload", upload);
  ASSERT_TRUE(f.ok()) << f.Describe();
  EXPECT_EQ(f.body.GetString("sha256").value_or(""), Sha256(bytes));
  EXPECT_EQ(f.body.GetUint("size").value_or(0), bytes.size());
  const std::string file = f.body.GetString("file").value_or("");
  EXPECT_EQ(CountFiles(dir_ + "/files/content"), 1u);
  EXPECT_EQ(CountFiles(dir_ + "/files/partial"), 0u);
  // A second FINISH: NOT_FOUND.
  EXPECT_EQ(ById(c, cmd::kUploadFinish, "upload", upload).code,
            static_cast<int>(codec::Code::kNotFound));

  // Bob may not see it until it is sent to him (the grant MSG/SEND would write).
  EXPECT_EQ(ById(b, cmd::kFileInfo, "file", file).code, static_cast<int>(codec::Code::kNotFound));
  {
    actors::Db db = StackDb(*stack_);
    const uint64_t ua = db.Query("SELECT uid FROM users WHERE name = ?", {std::string_view(alice)})
                            .rows.at(0)
                            .Uint(0)
                            .value_or(0);
    const uint64_t ub = db.Query("SELECT uid FROM users WHERE name = ?", {std::string_view(bob)})
                            .rows.at(0)
                            .Uint(0)
                            .value_or(0);
    const std::string conv =
        "d:" + std::to_string(std::min(ua, ub)) + ":" + std::to_string(std::max(ua, ub));
    db.Query("INSERT INTO file_grants (file_id, conv) VALUES (?, ?)",
             {std::string_view(file), std::string_view(conv)});
  }
  // Bob downloads it, 8 requests in flight at a time, through edge 1.
  const std::string got = Fetch(b, file, bytes.size(), 8);
  EXPECT_EQ(Sha256(got), Sha256(bytes));
}

// The file actors' expiry thread (--file-upload-ttl-s 2): an idle open upload goes,
// its row and its bytes; starting it again starts from 0.
class FileExpiryFlowTest : public FileFlowTest {
 protected:
  FileExpiryFlowTest() { extra_actor_args_ = {"--file-upload-ttl-s", "2"}; }
};

TEST_F(FileExpiryFlowTest, IdleUploadsAreDiscarded) {
  const std::string bytes = Bytes(100'000);
  client::Client c = LoggedIn(UniqueName("fexp"), 0, true);
  client::Response s = Start(c, bytes);
  ASSERT_TRUE(s.ok()) << s.Describe();
  const std::string upload = s.body.GetString("upload").value_or("");
  ASSERT_TRUE(Chunk(c, upload, 0, std::string_view(bytes).substr(0, kChunk)).ok());
  EXPECT_EQ(CountFiles(dir_ + "/files/partial"), 1u);
  actors::Db db = StackDb(*stack_);
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (std::chrono::steady_clock::now() < deadline &&
         (CountFiles(dir_ + "/files/partial") > 0 ||
          db.Query("SELECT COUNT(*) FROM file_uploads").rows.at(0).Int(0).value_or(-1) > 0)) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(CountFiles(dir_ + "/files/partial"), 0u);
  EXPECT_EQ(db.Query("SELECT COUNT(*) FROM file_uploads").rows.at(0).Int(0).value_or(-1), 0);
  EXPECT_EQ(Chunk(c, upload, kChunk, std::string_view(bytes).substr(kChunk, kChunk)).code,
            static_cast<int>(codec::Code::kNotFound));
  client::Response again = Start(c, bytes);
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_NE(again.body.GetString("upload").value_or(""), upload);
  EXPECT_EQ(again.body.GetUint("offset").value_or(1), 0u);
}

// 50 MB through an edge with the default limits (max_frame, per-connection and
// per-user rates): up, FINISH, down (pipelined), the sha256 checked. Long: only as
// its own ctest entry (file_flow_50mb_test), which sets IMBUS_FILE_50MB.
TEST_F(FileFlowTest, FiftyMegabytesThroughTheEdge) {
  if (std::getenv("IMBUS_FILE_50MB") == nullptr) GTEST_SKIP() << "set IMBUS_FILE_50MB to run";
  const std::string bytes = Bytes(50'000'000);
  client::Client c = LoggedIn(UniqueName("fbig"), 0, true);
  const auto t0 = std::chrono::steady_clock::now();
  client::Response s = Start(c, bytes);
  ASSERT_TRUE(s.ok()) << s.Describe();
  const std::string upload = s.body.GetString("upload").value_or("");
  uint64_t acked = 0;
  ASSERT_TRUE(Send(c, upload, bytes, &acked, bytes.size()));
  client::Response f = ById(c, cmd::kUploadFinish, "upload", upload);
  ASSERT_TRUE(f.ok()) << f.Describe();
  EXPECT_EQ(f.body.GetString("sha256").value_or(""), Sha256(bytes));
  const auto t1 = std::chrono::steady_clock::now();
  const std::string got = Fetch(c, f.body.GetString("file").value_or(""), bytes.size(), 8);
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(Sha256(got), Sha256(bytes));
  auto mbs = [](double n, auto d) { return n / 1e6 / std::chrono::duration<double>(d).count(); };
  std::cerr << "50 MB: upload " << mbs(5e7, t1 - t0) << " MB/s, download " << mbs(5e7, t2 - t1)
            << " MB/s (" << rate_limited_
            << " chunks and downloads refused by the rate limits, retried)\n";
}

}  // namespace
}  // namespace imbus::testing

// File API (client/file_api.h) against scripted fake servers: the upload resumes
// from the offset UPLOAD_START returns after a lost connection and follows CONFLICT;
// the download pipelines DOWNLOADs, resumes from an existing .part, checks the
// sha256 and renames (or removes the .part on a mismatch).
#include "client/file_api.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "codec/codes.h"
#include "codec/commands.h"
#include "test/client/fake_server.h"

namespace imbus::client {
namespace {

using std::chrono::milliseconds;
using testing::FakePeer;
using testing::FakeServer;

constexpr uint16_t kFile = codec::ToWire(codec::Service::kFile);

codec::Body ParseBody(const codec::Frame& f) {
  codec::Body b;
  std::string err;
  EXPECT_TRUE(codec::Body::Parse(f.body, &b, &err)) << err;
  return b;
}

std::string Content(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

class FileApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imbus-file-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& data) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static bool Exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }
  static std::string Sha(const std::string& path) {
    std::string d, e;
    uint64_t n = 0;
    EXPECT_TRUE(Sha256OfFile(path, &d, &n, &e)) << e;
    return d;
  }

  std::string dir_;
};

void PackBin(codec::MapWriter& w, std::string_view b) {
  w.packer().pack_bin(static_cast<uint32_t>(b.size()));
  w.packer().pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

std::string FileObjectBody(const std::string& id, const std::string& name, uint64_t size,
                           const std::string& sha) {
  codec::MapWriter w(8);
  w.Key("code").Int(0);
  w.Key("file").Str(id);
  w.Key("name").Str(name);
  w.Key("size").Uint(size);
  w.Key("mime").Str("application/octet-stream");
  w.Key("sha256");
  PackBin(w, sha);
  w.Key("from").Uint(7);
  w.Key("ts").Int(1700000000000);
  return w.Finish();
}

std::string StartedBody(uint64_t offset) {
  codec::MapWriter w(4);
  w.Key("code").Int(0);
  w.Key("upload").Str("u1");
  w.Key("chunk").Uint(32768);
  w.Key("offset").Uint(offset);
  return w.Finish();
}

std::string ChunkAnswer(const std::string& content, uint64_t offset, uint64_t length) {
  codec::MapWriter w(4);
  w.Key("code").Int(0);
  w.Key("data");
  PackBin(w, content.substr(offset, length));
  w.Key("offset").Uint(offset);
  w.Key("size").Uint(content.size());
  return w.Finish();
}

// Answers a chunk: checks its bytes, returns its end.
uint64_t AnswerChunk(FakePeer& peer, const std::string& content, uint64_t expect_offset) {
  codec::Frame req = peer.ReadFrame();
  EXPECT_EQ(req.header.command, codec::file::kUploadChunk);
  codec::Body b = ParseBody(req);
  EXPECT_EQ(b.GetString("upload"), "u1");
  const uint64_t offset = b.GetUint("offset").value_or(0);
  EXPECT_EQ(offset, expect_offset);
  const std::string data = b.GetString("data").value_or("");
  EXPECT_LE(data.size(), 32768u);
  EXPECT_EQ(data, content.substr(offset, data.size()));
  peer.Respond(req, testing::OkWith("offset", offset + data.size()));
  return offset + data.size();
}

TEST_F(FileApiTest, UploadResumesFromTheStoredOffsetAfterALostConnection) {
  const std::string content = Content(70000);
  const std::string path = Write("notes.txt", content);
  const std::string sha = Sha(path);
  FakeServer first([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.service, kFile);
    EXPECT_EQ(req.header.command, codec::file::kUploadStart);
    codec::Body b = ParseBody(req);
    EXPECT_EQ(b.GetString("name"), "notes.txt");
    EXPECT_EQ(b.GetUint("size"), 70000u);
    EXPECT_EQ(b.GetString("sha256"), sha);  // computed before START
    EXPECT_EQ(b.GetString("mime"), "text/plain");
    peer.Respond(req, StartedBody(0));
    EXPECT_EQ(AnswerChunk(peer, content, 0), 32768u);
    (void)peer.ReadFrame();  // the second chunk: lost with the connection
    peer.Close();
  });
  FakeServer second([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.command, codec::file::kUploadStart);  // START again: where to go on
    peer.Respond(req, StartedBody(32768));
    EXPECT_EQ(AnswerChunk(peer, content, 32768), 65536u);
    EXPECT_EQ(AnswerChunk(peer, content, 65536), 70000u);
    req = peer.ReadFrame();
    EXPECT_EQ(req.header.command, codec::file::kUploadFinish);
    peer.Respond(req, FileObjectBody("f1", "notes.txt", 70000, sha));
    peer.WaitClientClosed();
  });
  Client c(milliseconds(3000));
  std::string error;
  ASSERT_TRUE(c.Connect("127.0.0.1", first.port(), &error)) << error;
  TransferOptions options;
  int reconnects = 0;
  uint64_t last = 0;
  options.reconnect = [&] {
    ++reconnects;
    return c.Connect("127.0.0.1", second.port(), &error);
  };
  options.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 70000u);
    EXPECT_GE(done, last);
    last = done;
  };
  Result<FileInfo> r = UploadFile(c, path, options);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.value.file, "f1");
  EXPECT_EQ(r.value.sha256, sha);
  EXPECT_EQ(reconnects, 1);
  EXPECT_EQ(last, 70000u);
  first.Join();
}

TEST_F(FileApiTest, UploadFollowsConflictToTheStoredOffsetAndReportsMismatch) {
  const std::string content = Content(40000);
  const std::string path = Write("a.bin", content);
  FakeServer server([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    peer.Respond(req, StartedBody(0));
    req = peer.ReadFrame();  // offset 0: the server says it holds 32768 already
    codec::MapWriter w(3);
    w.Key("code").Int(static_cast<int>(codec::Code::kConflict));
    w.Key("error").Str("offset");
    w.Key("offset").Uint(32768);
    peer.Respond(req, w.Finish());
    EXPECT_EQ(AnswerChunk(peer, content, 32768), 40000u);
    req = peer.ReadFrame();
    EXPECT_EQ(req.header.command, codec::file::kUploadFinish);
    peer.Respond(req, codec::ErrorBody(codec::Code::kMismatch, "sha256 differs"));
    peer.WaitClientClosed();
  });
  Client c(milliseconds(3000));
  std::string error;
  ASSERT_TRUE(c.Connect("127.0.0.1", server.port(), &error)) << error;
  Result<FileInfo> r = UploadFile(c, path, {});
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kMismatch)) << r.Describe();
}

TEST_F(FileApiTest, DownloadPipelinesResumesFromThePartAndRenamesAfterTheCheck) {
  const std::string content = Content(300000);
  const std::string sha = Sha(Write("source", content));
  const std::string out = dir_ + "/got.bin";
  Write("got.bin.part", content.substr(0, 40000));  // an earlier, interrupted try
  FakeServer server([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    EXPECT_EQ(req.header.command, codec::file::kFileInfo);
    EXPECT_EQ(ParseBody(req).GetString("file"), "f9");
    peer.Respond(req, FileObjectBody("f9", "got.bin", content.size(), sha));
    req = peer.ReadFrame();  // the first: from the .part's end, the server's chunk
    codec::Body b = ParseBody(req);
    EXPECT_EQ(b.GetUint("offset"), 40000u);
    EXPECT_FALSE(b.Has("length"));
    peer.Respond(req, ChunkAnswer(content, 40000, 32768));
    // Then several in flight before any answer: read three, answer them, go on.
    uint64_t next = 40000 + 32768;
    std::vector<codec::Frame> held;
    for (int i = 0; i < 3; ++i) held.push_back(peer.ReadFrame());
    for (;;) {
      for (const codec::Frame& f : held) {
        codec::Body fb = ParseBody(f);
        EXPECT_EQ(fb.GetUint("offset"), next);
        EXPECT_EQ(fb.GetUint("length"), 32768u);
        peer.Respond(f, ChunkAnswer(content, next, 32768));
        next = std::min<uint64_t>(next + 32768, content.size());
      }
      held.clear();
      if (next >= content.size()) break;
      held.push_back(peer.ReadFrame());
    }
    peer.WaitClientClosed();
  });
  Client c(milliseconds(3000));
  std::string error;
  ASSERT_TRUE(c.Connect("127.0.0.1", server.port(), &error)) << error;
  TransferOptions options;
  options.window = 4;
  Result<Downloaded> r = DownloadFile(c, "f9", out, options);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.value.path, out);
  EXPECT_EQ(r.value.resumed_from, 40000u);
  EXPECT_EQ(r.value.fetched, content.size() - 40000);
  EXPECT_EQ(Read(out), content);
  EXPECT_FALSE(Exists(out + ".part"));
}

TEST_F(FileApiTest, DownloadReconnectsAndContinuesFromWhatItHas) {
  const std::string content = Content(100000);
  const std::string sha = Sha(Write("source", content));
  const std::string out = dir_ + "/r.bin";
  FakeServer first([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    peer.Respond(req, FileObjectBody("f3", "r.bin", content.size(), sha));
    req = peer.ReadFrame();
    peer.Respond(req, ChunkAnswer(content, 0, 32768));
    (void)peer.ReadFrame();
    peer.Close();  // gone before answering more
  });
  FakeServer second([&](FakePeer& peer) {
    for (uint64_t next = 32768; next < content.size(); next += 32768) {
      codec::Frame req = peer.ReadFrame();
      EXPECT_EQ(req.header.command, codec::file::kDownload);
      EXPECT_EQ(ParseBody(req).GetUint("offset"), next);
      peer.Respond(req, ChunkAnswer(content, next, 32768));
    }
    peer.WaitClientClosed();
  });
  Client c(milliseconds(3000));
  std::string error;
  ASSERT_TRUE(c.Connect("127.0.0.1", first.port(), &error)) << error;
  TransferOptions options;
  options.window = 1;  // the second server answers one at a time
  options.reconnect = [&] { return c.Connect("127.0.0.1", second.port(), &error); };
  Result<Downloaded> r = DownloadFile(c, "f3", out, options);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Read(out), content);
  EXPECT_EQ(r.value.fetched, content.size());
  first.Join();
}

TEST_F(FileApiTest, DownloadWithTheWrongHashRemovesThePartAndKeepsNoFile) {
  const std::string content = Content(1000);
  const std::string out = dir_ + "/bad.bin";
  FakeServer server([&](FakePeer& peer) {
    codec::Frame req = peer.ReadFrame();
    peer.Respond(req, FileObjectBody("f2", "bad.bin", content.size(), std::string(32, 'x')));
    req = peer.ReadFrame();
    peer.Respond(req, ChunkAnswer(content, 0, 32768));
    peer.WaitClientClosed();
  });
  Client c(milliseconds(3000));
  std::string error;
  ASSERT_TRUE(c.Connect("127.0.0.1", server.port(), &error)) << error;
  Result<Downloaded> r = DownloadFile(c, "f2", out, {});
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kMismatch)) << r.Describe();
  EXPECT_FALSE(Exists(out));
  EXPECT_FALSE(Exists(out + ".part"));
}

TEST(FileHelpersTest, NamesMimeSizesAndTheFileOfAMessage) {
  EXPECT_EQ(BaseName("/a/b/photo.PNG"), "photo.PNG");
  EXPECT_EQ(GuessMime("photo.PNG"), "image/png");
  EXPECT_EQ(GuessMime("noext"), "application/octet-stream");
  EXPECT_EQ(HumanSize(312), "312 B");
  EXPECT_EQ(HumanSize(1500000), "1.5 MB");
  EXPECT_EQ(HexOf(std::string("\x01\xab", 2)), "01ab");
  codec::MapWriter w(2);
  w.Key("text").Str("[file] x");
  w.Key("file");
  w.packer().pack_map(7);
  w.Key("file").Str("f1");
  w.Key("name").Str("x");
  w.Key("size").Uint(5);
  w.Key("mime").Str("text/plain");
  w.Key("sha256");
  PackBin(w, std::string(32, 's'));
  w.Key("from").Uint(3);
  w.Key("ts").Int(1);
  codec::Body b;
  std::string err;
  ASSERT_TRUE(codec::Body::Parse(w.Finish(), &b, &err)) << err;
  auto f = FileOfMessage(b.root());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->file, "f1");
  EXPECT_EQ(f->size, 5u);
  codec::MapWriter plain(1);
  plain.Key("text").Str("hi");
  ASSERT_TRUE(codec::Body::Parse(plain.Finish(), &b, &err)) << err;
  EXPECT_FALSE(FileOfMessage(b.root()).has_value());
}

}  // namespace
}  // namespace imbus::client

// Key handling for CURVE on the bus: generation, parsing, files, the allow list,
// the flag/env resolution every peer uses, and the log limiter.
#include "bus/curve.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "net/log_limiter.h"

namespace imbus::bus {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "imbus-curve-test-XXXXXX");
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(CurveTest, LibzmqHasCurve) { EXPECT_TRUE(CurveAvailable()); }

TEST(CurveTest, GeneratedPairIsConsistent) {
  std::string pub, sec, error, derived;
  ASSERT_TRUE(GenerateCurveKeyPair(&pub, &sec, &error)) << error;
  EXPECT_EQ(pub.size(), kZ85KeyLength);
  EXPECT_EQ(sec.size(), kZ85KeyLength);
  EXPECT_NE(pub, sec);
  ASSERT_TRUE(CurvePublicFromSecret(sec, &derived, &error)) << error;
  EXPECT_EQ(derived, pub);
}

TEST(CurveTest, ParseKeyRejectsBadText) {
  std::string pub, sec, key, error;
  ASSERT_TRUE(GenerateCurveKeyPair(&pub, &sec, &error));
  EXPECT_TRUE(ParseCurveKey("  " + pub + "\n", "k", &key, &error)) << error;
  EXPECT_EQ(key, pub);

  EXPECT_FALSE(ParseCurveKey("", "server key", &key, &error));
  EXPECT_NE(error.find("server key is empty"), std::string::npos) << error;
  EXPECT_FALSE(ParseCurveKey(pub.substr(1), "k", &key, &error));
  EXPECT_NE(error.find("40"), std::string::npos) << error;
  EXPECT_FALSE(ParseCurveKey(pub + "x", "k", &key, &error));
  std::string bad = pub;
  bad[7] = '~';  // not in the Z85 alphabet
  EXPECT_FALSE(ParseCurveKey(bad, "k", &key, &error));
  EXPECT_NE(error.find("Z85"), std::string::npos) << error;
  EXPECT_FALSE(CurvePublicFromSecret("short", &key, &error));
}

TEST(CurveTest, AllowListSkipsCommentsAndLabelsAndNamesBadLines) {
  std::string a, b, sec, error;
  ASSERT_TRUE(GenerateCurveKeyPair(&a, &sec, &error));
  ASSERT_TRUE(GenerateCurveKeyPair(&b, &sec, &error));
  std::vector<std::string> keys;
  ASSERT_TRUE(ParseCurveAllowList("# edges\n" + a + " edge-a\n\n  #\n" + b + "\r\n", &keys, &error))
      << error;
  EXPECT_EQ(keys, (std::vector<std::string>{a, b}));

  keys.clear();
  EXPECT_FALSE(ParseCurveAllowList(a + "\nnot-a-key\n", &keys, &error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_FALSE(ParseCurveAllowList("#comment-without-space\n", &keys, &error));

  keys.clear();
  ASSERT_TRUE(ParseCurveKeyList(a + "," + b + " ,", &keys, &error)) << error;
  EXPECT_EQ(keys, (std::vector<std::string>{a, b}));
  keys.clear();
  EXPECT_TRUE(ParseCurveKeyList("", &keys, &error));
  EXPECT_TRUE(keys.empty());
  EXPECT_FALSE(ParseCurveKeyList(a + ",oops", &keys, &error));
  EXPECT_NE(error.find("key 2"), std::string::npos) << error;
}

TEST(CurveTest, FilesLoadAndFailClearly) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string pub, sec, error, loaded;
  ASSERT_TRUE(GenerateCurveKeyPair(&pub, &sec, &error));
  const std::string base = dir.path() + "/node";
  ASSERT_TRUE(WriteCurveKeyFiles(base, pub, sec, &error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat((base + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(WriteCurveKeyFiles(base, pub, sec, &error));  // never overwrites
  EXPECT_NE(error.find("exists"), std::string::npos) << error;

  ASSERT_TRUE(LoadCurveSecretFile(base + ".key", &loaded, &error)) << error;
  EXPECT_EQ(loaded, sec);
  EXPECT_FALSE(LoadCurveSecretFile(dir.path() + "/missing.key", &loaded, &error));
  EXPECT_NE(error.find("missing.key"), std::string::npos) << error;
  EXPECT_FALSE(LoadCurveSecretFile(dir.File("junk.key", "hello\n"), &loaded, &error));
  EXPECT_NE(error.find("junk.key"), std::string::npos) << error;

  std::vector<std::string> keys;
  ASSERT_TRUE(LoadCurveAllowFile(base + ".pub", &keys, &error)) << error;
  EXPECT_EQ(keys, std::vector<std::string>{pub});
  EXPECT_FALSE(LoadCurveAllowFile(dir.File("allow", pub + "\nbad\n"), &keys, &error));
  EXPECT_NE(error.find("allow: line 2"), std::string::npos) << error;
}

TEST(CurveTest, ClientKeysFromFlagsAndEnv) {
  TempDir dir;
  std::string server_pub, server_sec, pub, sec, error;
  ASSERT_TRUE(GenerateCurveKeyPair(&server_pub, &server_sec, &error));
  ASSERT_TRUE(GenerateCurveKeyPair(&pub, &sec, &error));
  ::unsetenv(kCurveSecretEnv);
  CurveClientKeys keys;

  ASSERT_TRUE(ResolveCurveClientKeys("", "", &keys, &error)) << error;
  EXPECT_FALSE(keys.enabled());  // nothing configured: CURVE off

  EXPECT_FALSE(ResolveCurveClientKeys(server_pub, "", &keys, &error));
  EXPECT_NE(error.find("secret"), std::string::npos) << error;
  const std::string file = dir.File("me.key", sec + "\n");
  EXPECT_FALSE(ResolveCurveClientKeys("", file, &keys, &error));
  EXPECT_NE(error.find("--curve-server-key"), std::string::npos) << error;
  EXPECT_FALSE(ResolveCurveClientKeys("nope", file, &keys, &error));

  ASSERT_TRUE(ResolveCurveClientKeys(server_pub, file, &keys, &error)) << error;
  EXPECT_TRUE(keys.enabled());
  EXPECT_EQ(keys.public_key, pub);
  EXPECT_EQ(keys.secret_key, sec);

  ::setenv(kCurveSecretEnv, sec.c_str(), 1);
  ASSERT_TRUE(ResolveCurveClientKeys(server_pub, "", &keys, &error)) << error;
  EXPECT_EQ(keys.public_key, pub);
  ::setenv(kCurveSecretEnv, "garbage", 1);
  EXPECT_FALSE(ResolveCurveClientKeys(server_pub, "", &keys, &error));
  EXPECT_NE(error.find(kCurveSecretEnv), std::string::npos) << error;
  ::unsetenv(kCurveSecretEnv);
}

TEST(LogLimiterTest, LetsABurstThroughThenCountsTheRest) {
  using Clock = net::LogLimiter::Clock;
  net::LogLimiter limiter(2, std::chrono::seconds(10));
  const Clock::time_point t0 = Clock::now();
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.Allow(&suppressed, t0));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limiter.Allow(&suppressed, t0));
  EXPECT_FALSE(limiter.Allow(&suppressed, t0 + std::chrono::seconds(1)));
  EXPECT_FALSE(limiter.Allow(&suppressed, t0 + std::chrono::seconds(2)));
  EXPECT_TRUE(limiter.Allow(&suppressed, t0 + std::chrono::seconds(11)));
  EXPECT_EQ(suppressed, 2u);
}

}  // namespace
}  // namespace imbus::bus

// edge/http.h: the request parser, the upgrade check with its Origin rule, and the
// static files of the web app (content types, ETag and 304, no path escapes).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "edge/http.h"

namespace imbus::edge {
namespace {

HttpRequest Parse(const std::string& text) {
  HttpRequest r;
  size_t used = 0;
  std::string error;
  EXPECT_EQ(ParseHttpRequest(text, &r, &used, &error), HttpParse::kOk) << error;
  EXPECT_EQ(used, text.size());
  return r;
}

std::string Upgrade(const std::string& extra = "", const std::string& path = "/ws") {
  return "GET " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
         "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
         extra + "\r\n";
}

TEST(HttpParseTest, ParsesRequestLineAndHeaders) {
  HttpRequest r = Parse("GET /app.js?v=2 HTTP/1.1\r\nHost: x\r\nX-Thing:  a b \r\n\r\n");
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/app.js?v=2");
  EXPECT_EQ(r.path, "/app.js");
  ASSERT_NE(r.Header("x-thing"), nullptr);
  EXPECT_EQ(*r.Header("x-thing"), "a b");
  EXPECT_TRUE(r.keep_alive());
}

TEST(HttpParseTest, NeedsTheWholeHead) {
  HttpRequest r;
  size_t used = 0;
  std::string error;
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\n", &r, &used, &error),
            HttpParse::kNeedMore);
}

TEST(HttpParseTest, RefusesMalformedAndHostileHeads) {
  using namespace std::string_literals;
  const std::string bad[] = {
      "GET /\r\n\r\n"s,
      "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
      "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // no Host
      "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
      "\x88\x80\x01\x02\x03\x04"s,  // a WebSocket close frame with no handshake
      "\x00\x00\x00\x11\x00\x01"s,  // an imbus frame
  };
  for (const std::string& text : bad) {
    HttpRequest r;
    size_t used = 0;
    std::string error;
    EXPECT_EQ(ParseHttpRequest(text, &r, &used, &error), HttpParse::kBad) << text;
    EXPECT_FALSE(error.empty());
  }
}

TEST(HttpParseTest, TooLargeHead) {
  std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(kMaxHttpHead, 'a');
  HttpRequest r;
  size_t used = 0;
  std::string error;
  EXPECT_EQ(ParseHttpRequest(big, &r, &used, &error), HttpParse::kTooLarge);
}

TEST(WsUpgradeTest, AcceptsAValidUpgrade) {
  const WsUpgrade u = CheckWsUpgrade(Parse(Upgrade()), {});
  EXPECT_EQ(u.status, 101) << u.error;
  EXPECT_NE(u.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_EQ(u.response.rfind("HTTP/1.1 101 ", 0), 0u);
}

TEST(WsUpgradeTest, ClearErrorsForBadUpgrades) {
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426},
      {Upgrade("", "/other"), 404},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       400},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
       400},
      {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
       426},
      {"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
       405},
  };
  for (const Case& c : cases) {
    const WsUpgrade u = CheckWsUpgrade(Parse(c.request), {});
    EXPECT_EQ(u.status, c.status) << c.request;
    EXPECT_EQ(u.response.rfind("HTTP/1.1 " + std::to_string(c.status), 0), 0u) << u.response;
    EXPECT_NE(u.response.find(u.error), std::string::npos) << "the body says why";
  }
}

TEST(WsUpgradeTest, OriginRule) {
  // Default: the page's own origin only.
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: http://127.0.0.1:8080\r\n")), {}).status, 101);
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: http://evil.example\r\n")), {}).status, 403);
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: null\r\n")), {}).status, 403);
  // No Origin: not a browser; allowed.
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade()), {}).status, 101);
  // An allow-list replaces the default.
  const std::vector<std::string> list = {"https://chat.example.com"};
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: https://chat.example.com\r\n")), list).status,
            101);
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: http://127.0.0.1:8080\r\n")), list).status, 403);
  EXPECT_EQ(CheckWsUpgrade(Parse(Upgrade("Origin: http://any.example\r\n")), {"*"}).status, 101);
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/imbus-web-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    namespace fs = std::filesystem;
    fs::create_directories(dir_ + "/js");
    fs::create_directories(dir_ + "/node_modules/pkg/dist");
    fs::create_directories(dir_ + "/.hidden");
    Write("index.html", "<!doctype html><title>x</title>");
    Write("js/app.mjs", "export const x = 1;");
    Write("style.css", "body{}");
    Write("notes.xyz", "unknown type");
    Write(".hidden/secret.js", "no");
    Write("node_modules/pkg/dist/index.mjs", "export {};");
    Write("node_modules/pkg/dist/index.cjs.js", "module.exports = {};");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& body) {
    std::ofstream(dir_ + "/" + rel) << body;
  }
  std::string dir_;
};

TEST_F(StaticFilesTest, ServesFilesWithTypesAndValidators) {
  const StaticFiles files = StaticFiles::Load(dir_);
  EXPECT_NE(files.Find("/"), nullptr);
  EXPECT_NE(files.Find("/js/app.mjs"), nullptr);
  EXPECT_NE(files.Find("/node_modules/pkg/dist/index.mjs"), nullptr);
  EXPECT_EQ(files.Find("/node_modules/pkg/dist/index.cjs.js"), nullptr);
  EXPECT_EQ(files.Find("/notes.xyz"), nullptr);
  EXPECT_EQ(files.Find("/.hidden/secret.js"), nullptr);
  EXPECT_EQ(files.Find("/../etc/passwd"), nullptr);

  const std::string page = ServeStatic(&files, Parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(page.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(page.find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_NE(page.find("<!doctype html>"), std::string::npos);
  const std::string js = ServeStatic(&files, Parse("GET /js/app.mjs HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(js.find("Content-Type: text/javascript; charset=utf-8\r\n"), std::string::npos);
  const std::string css = ServeStatic(&files, Parse("GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_NE(css.find("Content-Type: text/css; charset=utf-8\r\n"), std::string::npos);

  const std::string etag = files.Find("/")->etag;
  const std::string again = ServeStatic(
      &files, Parse("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\n"));
  EXPECT_EQ(again.rfind("HTTP/1.1 304 ", 0), 0u);
  EXPECT_EQ(again.find("<!doctype"), std::string::npos);

  const std::string head = ServeStatic(&files, Parse("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(head.rfind("HTTP/1.1 200 ", 0), 0u);
  EXPECT_EQ(head.find("<!doctype"), std::string::npos);

  EXPECT_EQ(
      ServeStatic(&files, Parse("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")).rfind("HTTP/1.1 404", 0),
      0u);
  EXPECT_EQ(
      ServeStatic(&files, Parse("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")).rfind("HTTP/1.1 405", 0),
      0u);
  EXPECT_EQ(
      ServeStatic(nullptr, Parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).rfind("HTTP/1.1 404", 0),
      0u);
}

TEST_F(StaticFilesTest, MissingRootIsAStartupError) {
  EXPECT_THROW(StaticFiles::Load(dir_ + "/nope"), std::runtime_error);
  EXPECT_THROW(StaticFiles::Load(dir_, /*max_bytes=*/10), std::runtime_error);
}

}  // namespace
}  // namespace imbus::edge

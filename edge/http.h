// Internal to edge/. The HTTP/1.1 the WebSocket listener speaks before a connection
// becomes a WebSocket: the request parser (request line and headers only: no bodies),
// the RFC 6455 upgrade check with the Origin allow-list, responses, and the web app's
// static files (loaded into memory at startup, so the loop never touches the disk).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imbus::edge {

// The URL path of the WebSocket endpoint (ws://host:port/ws).
inline constexpr std::string_view kWsPath = "/ws";
// Largest request head (request line and headers) accepted: more is 431.
inline constexpr size_t kMaxHttpHead = 8192;

struct HttpRequest {
  std::string method;   // "GET"
  std::string target;   // "/index.html?x=1" as sent
  std::string path;     // "/index.html": the target without the query
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased

  // The value of the first header called `name` (lowercase), or nullptr.
  const std::string* Header(std::string_view name) const;
  // True when header `name` lists `token` (comma-separated, case-insensitive).
  bool HasToken(std::string_view name, std::string_view token) const;
  bool keep_alive() const;
};

enum class HttpParse { kNeedMore, kOk, kBad, kTooLarge };
// Parses one request head from the start of `buf`. kOk: *out filled and *consumed
// set to the head's length. kBad: *error says why (answer 400).
HttpParse ParseHttpRequest(std::string_view buf, HttpRequest* out, size_t* consumed,
                           std::string* error);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;
// A whole response. `body` is left out (Content-Length kept) when `head_only`.
std::string HttpResponse(int status, const HttpHeaders& headers, std::string_view body,
                         bool head_only = false, bool close = false);
// An error response: a one-line text/plain body, and Connection: close.
std::string HttpError(int status, std::string_view message, HttpHeaders extra = {});
const char* HttpReason(int status);

// The upgrade check. `origins`: the allowed Origin values ("https://chat.example.com"),
// "*" for any; empty: only the page's own origin (Origin's host equals Host). A
// request without Origin (not a browser) is allowed.
struct WsUpgrade {
  int status = 0;        // 101 on success; else the HTTP error to answer
  std::string error;     // why, for the error body and the log
  std::string response;  // the whole response to send (101 or the error)
};
bool IsWsUpgradeRequest(const HttpRequest& r);
WsUpgrade CheckWsUpgrade(const HttpRequest& r, const std::vector<std::string>& origins);

// The web app: every file under a directory, by URL path. Files under node_modules/
// are served only when they are JavaScript modules (.mjs, .js) or source maps.
class StaticFiles {
 public:
  struct File {
    std::string body;
    std::string type;  // Content-Type
    std::string etag;  // quoted
  };
  // Loads `root` recursively. Throws std::runtime_error when it is not a readable
  // directory or holds more than `max_bytes`.
  static StaticFiles Load(const std::string& root, size_t max_bytes = size_t{64} << 20);

  // "/" is "/index.html"; nullptr when there is no such file.
  const File* Find(std::string_view path) const;
  size_t size() const { return files_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  std::map<std::string, File, std::less<>> files_;
  size_t bytes_ = 0;
};

// The response to a GET or HEAD of a static file (200, 304 for a matching
// If-None-Match, 404, 405 for other methods). `files` may be null (no web app).
std::string ServeStatic(const StaticFiles* files, const HttpRequest& r);
// The Content-Type for a file name by its extension; empty when not served.
std::string ContentTypeFor(std::string_view name);

}  // namespace imbus::edge

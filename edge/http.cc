#include "edge/http.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "net/ws_session.h"

namespace imbus::edge {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char ch) {
  if (std::isalnum(static_cast<unsigned char>(ch)) != 0) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// "http://host:port" -> "host:port" (lowercased); empty when not such a URL.
std::string OriginHost(std::string_view origin) {
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = origin.substr(sep + 3);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return {};
  std::string host = Lower(rest);
  const std::string scheme = Lower(origin.substr(0, sep));
  // The default ports are left out of Origin but may be in Host.
  if (host.find(':') == std::string::npos || host.back() == ']') {
    if (scheme == "http") host += ":80";
    if (scheme == "https") host += ":443";
  }
  return host;
}

std::string HostWithPort(std::string_view host, bool tls_default) {
  std::string h = Lower(Trim(host));
  if (h.find(':') == std::string::npos || h.back() == ']') h += tls_default ? ":443" : ":80";
  return h;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool HttpRequest::HasToken(std::string_view name, std::string_view token) const {
  for (const auto& [k, v] : headers) {
    if (k != name) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      if (EqualsNoCase(Trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool HttpRequest::keep_alive() const {
  if (HasToken("connection", "close")) return false;
  if (version == "HTTP/1.0") return HasToken("connection", "keep-alive");
  return true;
}

HttpParse ParseHttpRequest(std::string_view buf, HttpRequest* out, size_t* consumed,
                           std::string* error) {
  const size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buf.size() > kMaxHttpHead) return HttpParse::kTooLarge;
    // Not HTTP at all (a WebSocket frame, TLS, an imbus frame): say so early.
    for (size_t i = 0; i < buf.size() && i < 16; ++i) {
      const char ch = buf[i];
      if (ch == ' ') break;
      if (!IsTokenChar(ch)) {
        *error = "not an HTTP request";
        return HttpParse::kBad;
      }
    }
    return HttpParse::kNeedMore;
  }
  if (end + 4 > kMaxHttpHead) return HttpParse::kTooLarge;
  *out = HttpRequest{};
  std::string_view head = buf.substr(0, end);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  // Request line: METHOD SP TARGET SP VERSION
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) {
    *error = "malformed request line";
    return HttpParse::kBad;
  }
  out->method = std::string(line.substr(0, sp1));
  out->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  out->version = std::string(line.substr(sp2 + 1));
  if (!std::all_of(out->method.begin(), out->method.end(), IsTokenChar)) {
    *error = "malformed method";
    return HttpParse::kBad;
  }
  if (out->version != "HTTP/1.1" && out->version != "HTTP/1.0") {
    *error = "unsupported HTTP version";
    return HttpParse::kBad;
  }
  if (out->target.empty() || out->target.front() != '/') {
    *error = "request target must be a path";
    return HttpParse::kBad;
  }
  for (char ch : out->target) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      *error = "control character in the request target";
      return HttpParse::kBad;
    }
  }
  out->path = out->target.substr(0, out->target.find_first_of("?#"));
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "malformed header line";
      return HttpParse::kBad;
    }
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar)) {
      *error = "malformed header name";
      return HttpParse::kBad;
    }
    const std::string_view value = Trim(line.substr(colon + 1));
    for (char ch : value) {
      if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f) {
        *error = "control character in a header";
        return HttpParse::kBad;
      }
    }
    out->headers.emplace_back(Lower(name), std::string(value));
  }
  if (out->Header("transfer-encoding") != nullptr) {
    *error = "request bodies are not accepted";
    return HttpParse::kBad;
  }
  if (const std::string* length = out->Header("content-length")) {
    if (*length != "0") {
      *error = "request bodies are not accepted";
      return HttpParse::kBad;
    }
  }
  if (out->version == "HTTP/1.1" && out->Header("host") == nullptr) {
    *error = "missing Host header";
    return HttpParse::kBad;
  }
  *consumed = end + 4;
  return HttpParse::kOk;
}

const char* HttpReason(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string HttpResponse(int status, const HttpHeaders& headers, std::string_view body,
                         bool head_only, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + HttpReason(status) + "\r\n";
  out += "Server: imbus-edge\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  if (status != 304 && status != 101) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only && status != 304) out.append(body.data(), body.size());
  return out;
}

std::string HttpError(int status, std::string_view message, HttpHeaders extra) {
  extra.emplace_back("Content-Type", "text/plain; charset=utf-8");
  extra.emplace_back("Cache-Control", "no-store");
  return HttpResponse(status, extra, std::string(message) + "\n", false, true);
}

bool IsWsUpgradeRequest(const HttpRequest& r) {
  return r.HasToken("upgrade", "websocket") || r.path == kWsPath;
}

WsUpgrade CheckWsUpgrade(const HttpRequest& r, const std::vector<std::string>& origins) {
  WsUpgrade u;
  auto fail = [&](int status, std::string error, HttpHeaders extra = {}) {
    u.status = status;
    u.error = std::move(error);
    u.response = HttpError(status, u.error, std::move(extra));
    return u;
  };
  if (r.path != kWsPath) {
    return fail(404, "no WebSocket endpoint at " + r.path + " (use " + std::string(kWsPath) + ")");
  }
  if (r.method != "GET") return fail(405, "WebSocket upgrade needs GET", {{"Allow", "GET"}});
  if (r.version != "HTTP/1.1") return fail(400, "WebSocket upgrade needs HTTP/1.1");
  if (!r.HasToken("upgrade", "websocket") || !r.HasToken("connection", "upgrade")) {
    return fail(426, "this is a WebSocket endpoint: send Upgrade: websocket",
                {{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}});
  }
  const std::string* version = r.Header("sec-websocket-version");
  if (version == nullptr || *version != "13") {
    return fail(426, "unsupported Sec-WebSocket-Version (13 only)",
                {{"Sec-WebSocket-Version", "13"}});
  }
  const std::string* key = r.Header("sec-websocket-key");
  if (key == nullptr) return fail(400, "missing Sec-WebSocket-Key");
  if (!net::WsValidKey(*key)) return fail(400, "invalid Sec-WebSocket-Key (base64 of 16 bytes)");
  if (const std::string* origin = r.Header("origin")) {
    bool allowed = false;
    if (origins.empty()) {
      const std::string* host = r.Header("host");
      const std::string want = OriginHost(*origin);
      allowed = host != nullptr && !want.empty() &&
                (want == HostWithPort(*host, false) || want == HostWithPort(*host, true));
    } else {
      for (const std::string& o : origins) {
        if (o == "*" || EqualsNoCase(o, *origin)) allowed = true;
      }
    }
    if (!allowed) return fail(403, "origin " + *origin + " is not allowed (--ws-origin)");
  }
  u.status = 101;
  HttpHeaders h = {{"Upgrade", "websocket"},
                   {"Connection", "Upgrade"},
                   {"Sec-WebSocket-Accept", net::WsAcceptKey(*key)}};
  // No subprotocol and no extension (permessage-deflate is not offered back).
  u.response = HttpResponse(101, h, {});
  return u;
}

std::string ContentTypeFor(std::string_view name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return {};
  const std::string ext = Lower(name.substr(dot + 1));
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {"html", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"map", "application/json"},
      {"json", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"ico", "image/x-icon"},
      {"txt", "text/plain; charset=utf-8"},
      {"webmanifest", "application/manifest+json"},
  };
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? std::string() : it->second;
}

StaticFiles StaticFiles::Load(const std::string& root, size_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw std::runtime_error("--web-root " + root + ": not a directory");
  }
  StaticFiles files;
  const fs::path base = fs::canonical(root, ec);
  for (auto it = fs::recursive_directory_iterator(base, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (!name.empty() && name.front() == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const std::string rel = "/" + fs::relative(p, base).generic_string();
    const std::string type = ContentTypeFor(name);
    if (type.empty()) continue;
    if (rel.rfind("/node_modules/", 0) == 0) {
      // Only the modules the browser imports, not the packages' other builds.
      const bool module = name.ends_with(".mjs") || name.ends_with(".mjs.map");
      if (!module) continue;
    } else if (rel.find("/node_modules/") != std::string::npos) {
      continue;
    }
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in.good() && !in.eof()) throw std::runtime_error("--web-root: cannot read " + p.string());
    File f;
    f.body = ss.str();
    f.type = type;
    char etag[32];
    std::snprintf(etag, sizeof(etag), "\"%016zx\"", std::hash<std::string>{}(f.body));
    f.etag = etag;
    files.bytes_ += f.body.size();
    if (files.bytes_ > max_bytes) {
      throw std::runtime_error("--web-root " + root + ": more than " + std::to_string(max_bytes) +
                               " bytes of files");
    }
    files.files_.emplace(rel, std::move(f));
  }
  if (ec) throw std::runtime_error("--web-root " + root + ": " + ec.message());
  return files;
}

const StaticFiles::File* StaticFiles::Find(std::string_view path) const {
  if (path == "/") path = "/index.html";
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

std::string ServeStatic(const StaticFiles* files, const HttpRequest& r) {
  const bool close = !r.keep_alive();
  if (r.method != "GET" && r.method != "HEAD") {
    return HttpError(405, "only GET and HEAD are served here", {{"Allow", "GET, HEAD"}});
  }
  const bool head = r.method == "HEAD";
  const StaticFiles::File* f = files == nullptr ? nullptr : files->Find(r.path);
  if (f == nullptr) {
    std::string body =
        files == nullptr ? "no web app on this edge (--web-root)\n" : "not found: " + r.path + "\n";
    return HttpResponse(
        404, {{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "no-store"}}, body,
        head, close);
  }
  // Revalidated on every use (no-cache + ETag): an upgraded app shows up at once,
  // an unchanged one costs a 304.
  HttpHeaders h = {{"Content-Type", f->type},
                   {"Cache-Control", "no-cache"},
                   {"ETag", f->etag},
                   {"X-Content-Type-Options", "nosniff"},
                   {"Referrer-Policy", "no-referrer"}};
  const std::string* inm = r.Header("if-none-match");
  if (inm != nullptr && (*inm == f->etag || *inm == "*")) {
    return HttpResponse(304, h, {}, true, close);
  }
  return HttpResponse(200, h, f->body, head, close);
}

}  // namespace imbus::edge

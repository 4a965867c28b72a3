// Internal to tests. Scraping a process's /metrics (--metrics-listen): a plain
// HTTP/1.0 GET, the text format parsed into {series -> value}, and promtool's lint.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "test/support/process.h"

namespace imbus::testing {

// The port a process logged in "metrics: serving http://HOST:PORT/metrics"; 0 when
// the line did not come.
inline int MetricsPort(Process& p) {
  const auto line = p.WaitForLog("metrics: serving http://", std::chrono::seconds(20));
  if (!line) return 0;
  const size_t end = line->find("/metrics");
  const size_t colon = line->rfind(':', end);
  if (end == std::string::npos || colon == std::string::npos) return 0;
  return std::atoi(line->substr(colon + 1, end - colon - 1).c_str());
}

// GET /metrics on 127.0.0.1:port: the body, or nullopt when the answer was not 200.
inline std::optional<std::string> HttpGetMetrics(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string in;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos || in.compare(0, 12, "HTTP/1.1 200") != 0) {
    if (in.compare(0, 12, "HTTP/1.0 200") != 0) return std::nullopt;
  }
  return in.substr(head_end + 4);
}

// "name{labels}" -> value, for every sample line (labels as exposed, in order).
using Scrape = std::map<std::string, double>;
inline Scrape ParseMetrics(const std::string& text) {
  Scrape out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return out;
}

// The value of `series`, or -1 when absent.
inline double Value(const Scrape& s, const std::string& series) {
  auto it = s.find(series);
  return it == s.end() ? -1 : it->second;
}

// `promtool check metrics` over the text: "" when clean, its output otherwise.
inline std::string PromtoolCheck(const std::string& text) {
  char path[] = "/tmp/imbus-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return "mkstemp failed";
  ::close(fd);
  {
    std::ofstream f(path);
    f << text;
  }
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  ::unlink(path);
  return rc == 0 ? std::string() : (out.empty() ? "promtool failed" : out);
}

}  // namespace imbus::testing

#include "client/cli.h"

#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <iostream>

namespace imbus::client::cli {

namespace {

// Turns terminal echo off for its lifetime (restored even when reading throws).
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

void StripLineEnd(std::string* s) {
  while (!s->empty() && (s->back() == '\n' || s->back() == '\r')) s->pop_back();
}

}  // namespace

std::optional<Endpoint> ParseServer(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return std::nullopt;
  }
  return Endpoint{std::string(host), static_cast<uint16_t>(port)};
}

int ConnectClient(const GlobalOptions& g, Client* client) {
  std::optional<Endpoint> ep = ParseServer(g.server);
  if (!ep) {
    std::cerr << "imbus: --server '" << g.server << "' is not HOST:PORT\n";
    return kExitUsage;
  }
  client->set_timeout(std::chrono::milliseconds(g.timeout_ms));
  std::string error;
  if (g.tls) {
    TlsConfig config;
    config.ca_file = g.ca_file;
    auto ctx = TlsClientContext::Create(config, &error);
    if (!ctx) {
      std::cerr << "imbus: --ca-file: " << error << "\n";
      return kExitUsage;
    }
    client->set_tls(std::move(ctx), g.server_name);
  }
  if (!client->Connect(ep->host, ep->port, &error)) {
    std::cerr << "imbus: cannot connect to " << g.server << (g.tls ? " (TLS)" : "") << ": "
              << error;
    if (error.rfind("TLS handshake failed", 0) != 0)
      std::cerr << " \u2014 is the stack up? (scripts/up)";
    std::cerr << "\n";
    return kExitConnect;
  }
  return kExitOk;
}

int ReportFailure(std::string_view what, int code, std::string_view error) {
  std::cerr << "imbus: " << what << " failed: " << DescribeResult(code, error) << "\n";
  return code == kCodeTimeout || code == kCodeDisconnected ? kExitConnect : kExitServerError;
}

std::string ObtainPassword(const std::optional<std::string>& flag, std::string_view prompt) {
  if (flag) return *flag;
  std::string line;
  if (isatty(STDIN_FILENO)) {
    std::cerr << prompt << std::flush;
    {
      EchoOff guard(STDIN_FILENO);
      std::getline(std::cin, line);
    }
    std::cerr << "\n";
  } else if (!std::getline(std::cin, line) && line.empty()) {
    throw UsageError("no password: give --password, set IMBUS_PASSWORD, or pipe it on stdin");
  }
  StripLineEnd(&line);
  if (line.empty()) throw UsageError("empty password");
  return line;
}

}  // namespace imbus::client::cli

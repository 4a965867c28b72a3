// Test-only: one P2P chat participant, run inside a network namespace by
// p2p_nat_test. Logs in (edge connection and P2P listener on one port), then either
// starts a direct chat with --peer-uid or waits for P2P_INCOMING and dials back,
// sends --text, waits for the other side's text, and prints what happened:
//   path direct|relayed
//   remote HOST:PORT        (the direct connection's far end)
//   got TEXT
// Exit 0 when a text arrived over the direct path, 1 otherwise, 2 on usage errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "client/p2p.h"
#include "client/presence_api.h"

namespace {

using imbus::client::P2pPath;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string RemoteOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "-";
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("imbus P2P test peer");
  std::string host, user, password = "password1", text;
  int port = 0;
  uint64_t peer_uid = 0;
  int timeout_ms = 8000;
  app.add_option("--host", host, "edge host")->required();
  app.add_option("--port", port, "edge port")->required();
  app.add_option("--user", user, "user name")->required();
  app.add_option("--password", password, "password");
  app.add_option("--peer-uid", peer_uid, "start the chat with this uid (else wait for it)");
  app.add_option("--text", text, "text to send")->required();
  app.add_option("--timeout-ms", timeout_ms, "direct connection timeout");
  CLI11_PARSE(app, argc, argv);

  imbus::client::Client client(milliseconds(5000));
  imbus::client::P2pOptions options;
  options.direct_timeout = milliseconds(timeout_ms);
  imbus::client::P2pSession p2p(&client, options);
  std::string error;
  if (!p2p.ConnectAndListen(host, static_cast<uint16_t>(port), &error)) {
    std::cout << "error connect " << error << std::endl;
    return 1;
  }
  imbus::client::LoginRequest login;
  login.name = user;
  login.password = password;
  p2p.FillLogin(&login);
  auto session = client.Login(login);
  if (!session.ok()) {
    std::cout << "error login " << session.Describe() << std::endl;
    return 1;
  }
  std::cout << "ready uid " << session.value.uid << " port " << p2p.port() << " local "
            << p2p.local_host() << std::endl;

  P2pPath path = P2pPath::kNone;
  const auto give_up = Clock::now() + milliseconds(timeout_ms) + std::chrono::seconds(15);
  if (peer_uid != 0) {
    path = p2p.Start(peer_uid);
  } else {
    while (path == P2pPath::kNone && Clock::now() < give_up) {
      auto push = client.connection().WaitPush(milliseconds(200));
      if (!push) continue;
      if (auto in = imbus::client::ParseP2pIncoming(*push)) path = p2p.Accept(*in);
    }
  }
  std::cout << "path " << imbus::client::P2pPathName(path) << std::endl;
  if (path != P2pPath::kDirect) return 1;
  std::cout << "remote " << RemoteOf(p2p.direct_fd()) << std::endl;

  const P2pPath sent = p2p.Send(text, &error);
  std::cout << "sent " << imbus::client::P2pPathName(sent) << std::endl;
  bool got = false;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!got && Clock::now() < deadline) {
    for (const auto& e : p2p.Poll(milliseconds(100))) {
      if (e.kind == imbus::client::P2pEvent::Kind::kText) {
        std::cout << "got " << e.text << std::endl;
        got = true;
      }
    }
  }
  // Linger so the other side's TEXT is answered before we go.
  const auto linger = Clock::now() + std::chrono::milliseconds(1500);
  while (Clock::now() < linger) (void)p2p.Poll(milliseconds(100));
  return got && sent == P2pPath::kDirect ? 0 : 1;
}

// Test-only: one P2P chat participant, run inside a network namespace by
// p2p_nat_test. Logs in (edge connection and P2P listener on one port), then either
// starts a direct chat with --peer-uid or waits for P2P_INCOMING and dials back,
// sends --text, waits for the other side's text, and prints what happened:
//   path direct|relayed
//   remote HOST:PORT        (the direct connection's far end)
//   got TEXT
// Exit 0 when a text arrived over the direct path, 1 otherwise, 2 on usage errors.
//
// File mode (issue 19): --send-file PATH (with --peer-uid) sends PATH with
// SendFileDirectOrStored (--cut-after N shuts the direct socket down once N bytes are
// acknowledged, so the transfer falls back to the stored upload) and prints
//   sent via direct|relayed bytes_direct N ms T
// --recv-dir DIR waits for the file: over P2P, or, after a broken direct transfer,
// from the file message (DownloadFile resuming from the .part), and prints
//   broken at N                  (the direct transfer stopped with N bytes held)
//   resumed N fetched M          (the stored download)
//   received PATH sha256 HEX size S ms T
// Exit 0 once the file is there (the caller checks the hash), 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "client/file_api.h"
#include "client/msg_api.h"
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

long MsSince(Clock::time_point t0) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count());
}

int SendFileMode(imbus::client::Client& client, imbus::client::P2pSession& p2p, uint64_t peer,
                 const std::string& path, uint64_t cut_after) {
  imbus::client::TransferOptions options;
  bool cut = false;
  options.progress = [&](uint64_t done, uint64_t) {
    if (cut_after != 0 && !cut && done >= cut_after && p2p.direct_fd() >= 0) {
      cut = true;
      ::shutdown(p2p.direct_fd(), SHUT_RDWR);
      std::cout << "cut at " << done << std::endl;
    }
  };
  const auto t0 = Clock::now();
  auto r = imbus::client::SendFileDirectOrStored(p2p, client, peer, path, options);
  if (!r.ok()) {
    std::cout << "error send " << r.Describe() << std::endl;
    return 1;
  }
  std::cout << "sent via " << imbus::client::P2pPathName(r.value.via) << " bytes_direct "
            << r.value.direct_bytes << " ms " << MsSince(t0) << std::endl;
  if (!r.value.direct_error.empty())
    std::cout << "direct error " << r.value.direct_error << std::endl;
  // Linger so a BYE or late answers do not race the receiver.
  const auto linger = Clock::now() + milliseconds(500);
  while (Clock::now() < linger) (void)p2p.Poll(milliseconds(100));
  p2p.Close();
  return 0;
}

void PrintReceived(const std::string& path, Clock::time_point t0) {
  std::string sha, error;
  uint64_t size = 0;
  if (!imbus::client::Sha256OfFile(path, &sha, &size, &error)) {
    std::cout << "error " << error << std::endl;
    return;
  }
  std::cout << "received " << path << " sha256 " << imbus::client::HexOf(sha) << " size " << size
            << " ms " << MsSince(t0) << std::endl;
}

int ReceiveFileMode(imbus::client::Client& client, imbus::client::P2pSession& p2p,
                    const std::string& dir, int timeout_ms) {
  p2p.set_receive_dir(dir);
  const auto give_up = Clock::now() + milliseconds(timeout_ms) + std::chrono::seconds(60);
  Clock::time_point t0 = Clock::now();
  bool broken = false;
  std::string broken_sha;
  while (Clock::now() < give_up) {
    for (const auto& e : p2p.Poll(milliseconds(50))) {
      using Kind = imbus::client::P2pEvent::Kind;
      if (e.kind == Kind::kFileStarted) {
        t0 = Clock::now();
        std::cout << "offer " << e.name << " size " << e.size << " from " << e.offset << std::endl;
      } else if (e.kind == Kind::kFileReceived) {
        PrintReceived(e.path, t0);
        return 0;
      } else if (e.kind == Kind::kFileBroken) {
        broken = true;
        broken_sha = e.sha256;
        std::cout << "broken at " << e.offset << " (" << e.note << ")" << std::endl;
      }
    }
    while (auto push = client.connection().PollPushes()) {
      if (auto in = imbus::client::ParseP2pIncoming(*push)) {
        std::cout << "path " << imbus::client::P2pPathName(p2p.Accept(*in)) << std::endl;
        continue;
      }
      auto m = imbus::client::MessageFromPush(*push);
      if (!m) continue;
      if (!m->file) continue;
      const imbus::client::FileInfo* file = &*m->file;
      std::cout << "file message " << file->file << " " << file->name
                << (broken && file->sha256 == broken_sha ? " (the broken transfer)" : "")
                << std::endl;
      imbus::client::TransferOptions options;
      options.no_clobber = true;
      auto r = imbus::client::DownloadFile(client, file->file, dir + "/" + file->name, options);
      if (!r.ok()) {
        std::cout << "error download " << r.Describe() << std::endl;
        return 1;
      }
      std::cout << "resumed " << r.value.resumed_from << " fetched " << r.value.fetched
                << std::endl;
      PrintReceived(r.value.path, t0);
      return 0;
    }
    if (client.connection().closed()) {
      std::cout << "error edge closed" << std::endl;
      return 1;
    }
  }
  std::cout << "error no file" << std::endl;
  return 1;
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
  app.add_option("--text", text, "text to send");
  app.add_option("--timeout-ms", timeout_ms, "direct connection timeout");
  std::string send_file, recv_dir;
  uint64_t cut_after = 0;
  app.add_option("--send-file", send_file, "send this file to --peer-uid");
  app.add_option("--cut-after", cut_after, "shut the direct socket down after N bytes");
  app.add_option("--recv-dir", recv_dir, "receive one file into this directory");
  CLI11_PARSE(app, argc, argv);
  if (text.empty() && send_file.empty() && recv_dir.empty()) {
    std::cerr << "--text, --send-file or --recv-dir\n";
    return 2;
  }

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

  if (!send_file.empty()) return SendFileMode(client, p2p, peer_uid, send_file, cut_after);
  if (!recv_dir.empty()) return ReceiveFileMode(client, p2p, recv_dir, timeout_ms);

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

// Internal to tests. FakeGateway: a tiny HTTP/1.1 server on 127.0.0.1 standing in
// for a push gateway (docs/deploy.md "Offline push"). It records every POST (its
// idempotency key, signature and attempt headers and body) and answers 503 to the
// first `fail_first`, then 200 — or, silent, never answers at all. A key answered
// 200 twice (a redelivery) is counted once in accepted() and again in duplicates().
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace imbus::testing {

class FakeGateway {
 public:
  struct Post {
    std::string key;        // Idempotency-Key
    std::string signature;  // X-Imbus-Signature
    std::string attempt;    // X-Imbus-Attempt
    std::string body;
  };

  FakeGateway() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof(a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeGateway() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : conns_) t.join();
    ::close(listen_fd_);
  }
  FakeGateway(const FakeGateway&) = delete;
  FakeGateway& operator=(const FakeGateway&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/push"; }
  void set_fail_first(int n) { fail_first_ = n; }
  void set_silent(bool s) { silent_ = s; }
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }

  std::vector<Post> posts() {
    std::lock_guard<std::mutex> l(mu_);
    return posts_;
  }
  std::map<std::string, int> accepted() {
    std::lock_guard<std::mutex> l(mu_);
    return accepted_;
  }
  int duplicates() {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (const auto& [key, count] : accepted_) n += count - 1;
    return n;
  }
  // Waits until `n` POSTs have arrived (read, perhaps not answered yet).
  bool WaitPosts(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    return changed_.wait_for(l, timeout, [&] { return posts_.size() >= n; });
  }
  // Waits until every key of `keys` has been answered 200.
  bool WaitAccepted(const std::set<std::string>& keys, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    return changed_.wait_for(l, timeout, [&] {
      for (const std::string& k : keys) {
        if (accepted_.count(k) == 0) return false;
      }
      return true;
    });
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static std::string Header(const std::string& head, const std::string& name) {
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(::tolower(static_cast<unsigned char>(c)));
    const std::string needle = "\r\n" + name + ":";
    const size_t at = lower.find(needle);
    if (at == std::string::npos) return {};
    size_t from = at + needle.size();
    while (from < head.size() && head[from] == ' ') ++from;
    return head.substr(from, head.find("\r\n", from) - from);
  }

  // Reads more into *buf; false on EOF, error or stop.
  bool ReadMore(int fd, std::string* buf) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, 50);
      if (r == 0) continue;
      if (r < 0) return false;
      char tmp[4096];
      const ssize_t n = ::read(fd, tmp, sizeof(tmp));
      if (n <= 0) return false;
      buf->append(tmp, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  void Serve(int fd) {
    std::string buf;
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!ReadMore(fd, &buf)) return (void)::close(fd);
      }
      const std::string head = buf.substr(0, end + 2);
      const size_t length = std::stoul("0" + Header(head, "content-length"));
      while (buf.size() < end + 4 + length) {
        if (!ReadMore(fd, &buf)) return (void)::close(fd);
      }
      Post post{Header(head, "idempotency-key"), Header(head, "x-imbus-signature"),
                Header(head, "x-imbus-attempt"), buf.substr(end + 4, length)};
      buf.erase(0, end + 4 + length);
      int index;
      {
        std::lock_guard<std::mutex> l(mu_);
        posts_.push_back(post);
        index = static_cast<int>(posts_.size());
      }
      changed_.notify_all();
      if (silent_) {  // never answers: holds the connection until the client gives up
        while (ReadMore(fd, &buf)) {
        }
        return (void)::close(fd);
      }
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      const bool ok = index > fail_first_;
      const std::string answer =
          std::string(ok ? "HTTP/1.1 200 OK" : "HTTP/1.1 503 Service Unavailable") +
          "\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
      if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(answer.size())) {
        return (void)::close(fd);
      }
      if (ok) {
        std::lock_guard<std::mutex> l(mu_);
        ++accepted_[post.key];
      }
      changed_.notify_all();
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> fail_first_{0};
  std::atomic<bool> silent_{false};
  std::atomic<int> delay_ms_{0};
  std::thread acceptor_;
  std::vector<std::thread> conns_;  // the acceptor's only
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Post> posts_;              // guarded by mu_
  std::map<std::string, int> accepted_;  // guarded by mu_
};

}  // namespace imbus::testing

// Public. Client: a Connection to an edge (plain or TLS) with one typed method per
// SYS and AUTH command. DIRECTORY, PRESENCE and MSG have their typed calls as free
// functions over a Client in directory_api.h, presence_api.h and msg_api.h; Call()
// sends any other body. Every call blocks until its response or the client's
// timeout and returns a Result.
//
// Not thread-safe: a Client belongs to one thread. Move-only (owns its Connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/connection.h"

namespace imbus::client {

// The outcome of one typed call: `code` and `error` as in Response (0 = OK, negative
// = local failure, see connection.h); `value` is meaningful only when ok().
template <typename T>
struct Result {
  int code = kCodeDisconnected;
  std::string error;
  int64_t retry_ms = 0;  // RATE_LIMITED: wait this long, then retry (see Response)
  T value{};

  bool ok() const { return code == 0; }
  // "UNAUTHENTICATED: wrong name or password".
  std::string Describe() const { return DescribeResult(code, error); }
};

struct Empty {};

struct Session {
  uint64_t uid = 0;
  std::string name;
  std::string token;  // empty after RESUME (the caller already has it)
};

struct LoginRequest {
  std::string name;  // either name ...
  uint64_t uid = 0;  // ... or uid (used when non-zero)
  std::string password;
  std::string device;                // empty: omitted, the server uses "default"
  std::optional<uint16_t> p2p_port;  // port this client accepts P2P connections on
  std::string local_host;            // our address toward the edge; empty: omitted
};

struct PingInfo {
  std::chrono::microseconds rtt{0};
  int64_t server_ts = 0;  // ms since the Unix epoch
};

struct EdgeInfo {
  std::string host;
  uint16_t port = 0;
  uint64_t load = 0;
};

struct RouteInfo {
  std::string host;  // the edge to use
  uint16_t port = 0;
  std::vector<EdgeInfo> edges;  // all known edges with their load
};

struct ServerInfo {
  std::string server;
  std::string version;
  uint64_t max_frame = 0;
  uint64_t idle_timeout_s = 0;
};

class Client {
 public:
  explicit Client(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
      : timeout_(timeout) {}
  Client(Connection connection, std::chrono::milliseconds timeout)
      : connection_(std::move(connection)), timeout_(timeout) {}
  Client(Client&&) = default;
  Client& operator=(Client&&) = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Makes Connect speak TLS with `tls` (null: plain TCP again), verifying the
  // server's certificate against `server_name` (empty: the host connected to).
  void set_tls(std::shared_ptr<const TlsClientContext> tls, std::string server_name = {}) {
    tls_ = std::move(tls);
    tls_server_name_ = std::move(server_name);
  }

  // Connects (or reconnects) within the client's timeout; *error as Connection::Connect.
  bool Connect(const std::string& host, uint16_t port, std::string* error, int local_port = -1);

  // SYS
  Result<PingInfo> Ping();
  Result<RouteInfo> Route();
  Result<ServerInfo> Hello(std::string_view client_name = "imbus-client");

  // AUTH. Login/Resume remember the session (session()); Logout and a successful
  // DeleteAccount of the logged-in user forget it.
  Result<uint64_t> Register(std::string_view name, std::string_view password);
  Result<Session> Login(const LoginRequest& request);
  Result<Session> Login(std::string_view name, std::string_view password,
                        std::string_view device = {});
  Result<Session> Resume(std::string_view token, std::string_view device = {});
  // RESUME that also declares p2p_port and local_host (as in LoginRequest; name,
  // uid and password there are ignored).
  Result<Session> ResumeWithP2p(std::string_view token, const LoginRequest& p2p);
  Result<Empty> Logout();
  Result<Empty> DeleteAccount(uint64_t uid, std::string_view password);

  // Generic call for services without typed wrappers yet (body from codec::MapWriter).
  Response Call(uint16_t service, uint16_t command, std::string_view body) {
    return connection_.Call(service, command, body, timeout_);
  }

  const std::optional<Session>& session() const { return session_; }
  Connection& connection() { return connection_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

 private:
  Connection connection_;
  std::chrono::milliseconds timeout_;
  std::optional<Session> session_;
  std::shared_ptr<const TlsClientContext> tls_;
  std::string tls_server_name_;
};

}  // namespace imbus::client

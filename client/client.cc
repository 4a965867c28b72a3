#include "client/client.h"

#include <utility>

#include "client/wire.h"
#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client {

namespace {

constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);

using codec::StringIn;
using codec::UintIn;
using wire::Typed;

Empty NoValue(const codec::Body&) { return {}; }

uint16_t Port(uint64_t v) {
  if (v > 65535) throw codec::BadField("port out of range");
  return static_cast<uint16_t>(v);
}

}  // namespace

bool Client::Connect(const std::string& host, uint16_t port, std::string* error, int local_port) {
  session_.reset();
  connection_.UseTls(tls_, tls_server_name_);
  return connection_.Connect(host, port, ConnectOptions{timeout_, local_port}, error);
}

Result<PingInfo> Client::Ping() {
  const auto start = std::chrono::steady_clock::now();
  Response r = Call(kSys, codec::sys::kPing, codec::EmptyBody());
  const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  return Typed<PingInfo>(std::move(r), [rtt](const codec::Body& b) {
    PingInfo info;
    info.rtt = rtt;
    info.server_ts = b.GetInt("ts").value_or(0);
    return info;
  });
}

Result<RouteInfo> Client::Route() {
  return Typed<RouteInfo>(
      Call(kSys, codec::sys::kRoute, codec::EmptyBody()), [](const codec::Body& b) {
        RouteInfo info;
        info.host = b.RequireString("host");
        info.port = Port(b.RequireUint("port"));
        const msgpack::object* edges = b.Find("edges");
        if (edges == nullptr) return info;
        if (edges->type != msgpack::type::ARRAY) {
          throw codec::BadField("field 'edges' must be an array");
        }
        for (uint32_t i = 0; i < edges->via.array.size; ++i) {
          const msgpack::object& e = edges->via.array.ptr[i];
          info.edges.push_back(
              EdgeInfo{StringIn(e, "host"), Port(UintIn(e, "port")), UintIn(e, "load")});
        }
        return info;
      });
}

Result<ServerInfo> Client::Hello(std::string_view client_name) {
  codec::MapWriter w(2);
  w.Key("client").Str(client_name);
  w.Key("version").Uint(codec::kProtocolVersion);
  return Typed<ServerInfo>(Call(kSys, codec::sys::kHello, w.Finish()), [](const codec::Body& b) {
    ServerInfo info;
    info.server = b.GetString("server").value_or("");
    // `version` may be a number or a string; show either.
    const msgpack::object* v = b.Find("version");
    if (v != nullptr && v->type == msgpack::type::POSITIVE_INTEGER) {
      info.version = std::to_string(v->via.u64);
    } else {
      info.version = b.GetString("version").value_or("");
    }
    info.max_frame = b.GetUint("max_frame").value_or(0);
    info.idle_timeout_s = b.GetUint("idle_timeout_s").value_or(0);
    return info;
  });
}

Result<uint64_t> Client::Register(std::string_view name, std::string_view password) {
  codec::MapWriter w(2);
  w.Key("name").Str(name);
  w.Key("password").Str(password);
  return Typed<uint64_t>(Call(kAuth, codec::auth::kRegister, w.Finish()),
                         [](const codec::Body& b) { return b.RequireUint("uid"); });
}

Result<Session> Client::Login(const LoginRequest& request) {
  const uint32_t fields = 2 + (request.device.empty() ? 0 : 1) + (request.p2p_port ? 1 : 0) +
                          (request.local_host.empty() ? 0 : 1);
  codec::MapWriter w(fields);
  if (request.uid != 0) {
    w.Key("uid").Uint(request.uid);
  } else {
    w.Key("name").Str(request.name);
  }
  w.Key("password").Str(request.password);
  if (!request.device.empty()) w.Key("device").Str(request.device);
  if (request.p2p_port) w.Key("p2p_port").Uint(*request.p2p_port);
  if (!request.local_host.empty()) w.Key("local_host").Str(request.local_host);
  auto result =
      Typed<Session>(Call(kAuth, codec::auth::kLogin, w.Finish()), [](const codec::Body& b) {
        return Session{b.RequireUint("uid"), b.RequireString("name"), b.RequireString("token")};
      });
  if (result.ok()) session_ = result.value;
  return result;
}

Result<Session> Client::Login(std::string_view name, std::string_view password,
                              std::string_view device) {
  LoginRequest request;
  request.name = std::string(name);
  request.password = std::string(password);
  request.device = std::string(device);
  return Login(request);
}

Result<Session> Client::Resume(std::string_view token, std::string_view device) {
  LoginRequest fields;
  fields.device = std::string(device);
  return ResumeWithP2p(token, fields);
}

Result<Session> Client::ResumeWithP2p(std::string_view token, const LoginRequest& p2p) {
  const std::string& device = p2p.device;
  codec::MapWriter w(1 + (device.empty() ? 0 : 1) + (p2p.p2p_port ? 1 : 0) +
                     (p2p.local_host.empty() ? 0 : 1));
  w.Key("token").Str(token);
  if (!device.empty()) w.Key("device").Str(device);
  if (p2p.p2p_port) w.Key("p2p_port").Uint(*p2p.p2p_port);
  if (!p2p.local_host.empty()) w.Key("local_host").Str(p2p.local_host);
  auto result =
      Typed<Session>(Call(kAuth, codec::auth::kResume, w.Finish()), [](const codec::Body& b) {
        return Session{b.RequireUint("uid"), b.RequireString("name"), std::string()};
      });
  if (result.ok()) {
    session_ = result.value;
    session_->token = std::string(token);
  }
  return result;
}

Result<Empty> Client::Logout() {
  auto result = Typed<Empty>(Call(kAuth, codec::auth::kLogout, codec::EmptyBody()), NoValue);
  if (result.ok()) session_.reset();
  return result;
}

Result<Empty> Client::DeleteAccount(uint64_t uid, std::string_view password) {
  codec::MapWriter w(2);
  w.Key("uid").Uint(uid);
  w.Key("password").Str(password);
  auto result = Typed<Empty>(Call(kAuth, codec::auth::kDeleteAccount, w.Finish()), NoValue);
  if (result.ok() && session_ && session_->uid == uid) session_.reset();
  return result;
}

}  // namespace imbus::client

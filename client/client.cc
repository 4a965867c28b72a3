#include "client/client.h"

#include <utility>

#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client {

namespace {

constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);

// Turns a Response into a Result<T>: failures keep their code and error; on OK,
// `parse(body)` fills the value, and a missing or ill-typed field (BadField) makes
// the whole result kCodeBadResponse.
template <typename T, typename Parse>
Result<T> Typed(Response r, Parse parse) {
  Result<T> out;
  out.code = r.code;
  out.error = std::move(r.error);
  if (!r.ok()) return out;
  try {
    out.value = parse(r.body);
  } catch (const codec::BadField& e) {
    out.code = kCodeBadResponse;
    out.error = std::string("bad response body: ") + e.what();
  }
  return out;
}

Empty NoValue(const codec::Body&) { return {}; }

// Nested maps (ROUTE's `edges`) are read straight from the msgpack objects.
const msgpack::object* FindIn(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object_kv& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

uint64_t UintIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FindIn(map, key);
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) {
    throw codec::BadField("field '" + std::string(key) + "' must be a non-negative integer");
  }
  return o->via.u64;
}

std::string StringIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FindIn(map, key);
  if (o == nullptr || o->type != msgpack::type::STR) {
    throw codec::BadField("field '" + std::string(key) + "' must be a string");
  }
  return std::string(o->via.str.ptr, o->via.str.size);
}

uint16_t Port(uint64_t v) {
  if (v > 65535) throw codec::BadField("port out of range");
  return static_cast<uint16_t>(v);
}

}  // namespace

bool Client::Connect(const std::string& host, uint16_t port, std::string* error,
                     int local_port) {
  session_.reset();
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
  return Typed<RouteInfo>(Call(kSys, codec::sys::kRoute, codec::EmptyBody()),
                          [](const codec::Body& b) {
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
                              info.edges.push_back(EdgeInfo{StringIn(e, "host"),
                                                            Port(UintIn(e, "port")),
                                                            UintIn(e, "load")});
                            }
                            return info;
                          });
}

Result<ServerInfo> Client::Hello(std::string_view client_name) {
  codec::MapWriter w(2);
  w.Key("client").Str(client_name);
  w.Key("version").Uint(codec::kProtocolVersion);
  return Typed<ServerInfo>(Call(kSys, codec::sys::kHello, w.Finish()),
                           [](const codec::Body& b) {
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
  const uint32_t fields = 2 + (request.device.empty() ? 0 : 1) + (request.p2p_port ? 1 : 0);
  codec::MapWriter w(fields);
  if (request.uid != 0) {
    w.Key("uid").Uint(request.uid);
  } else {
    w.Key("name").Str(request.name);
  }
  w.Key("password").Str(request.password);
  if (!request.device.empty()) w.Key("device").Str(request.device);
  if (request.p2p_port) w.Key("p2p_port").Uint(*request.p2p_port);
  auto result = Typed<Session>(Call(kAuth, codec::auth::kLogin, w.Finish()),
                               [](const codec::Body& b) {
                                 return Session{b.RequireUint("uid"), b.RequireString("name"),
                                                b.RequireString("token")};
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
  codec::MapWriter w(device.empty() ? 1 : 2);
  w.Key("token").Str(token);
  if (!device.empty()) w.Key("device").Str(device);
  auto result = Typed<Session>(Call(kAuth, codec::auth::kResume, w.Finish()),
                               [](const codec::Body& b) {
                                 return Session{b.RequireUint("uid"), b.RequireString("name"),
                                                std::string()};
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
  auto result =
      Typed<Empty>(Call(kAuth, codec::auth::kDeleteAccount, w.Finish()), NoValue);
  if (result.ok() && session_ && session_->uid == uid) session_.reset();
  return result;
}

}  // namespace imbus::client

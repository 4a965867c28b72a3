// libFuzzer target: AUTH requests (REGISTER, LOGIN, RESUME, LOGOUT, DELETE_ACCOUNT)
// through AuthService::Handle on the in-memory store, with the cheapest password
// hash. Each input gets a fresh store holding user 1 "alice" (password "password1")
// with the token "fuzz-token" on device "default". Input layout: fuzz_util.h.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/auth/auth_service.h"
#include "actors/auth/memory_auth_store.h"
#include "actors/auth/password_hasher.h"
#include "codec/commands.h"
#include "test/fuzz/fuzz_util.h"

namespace imbus::fuzz {
namespace {

constexpr uint64_t kOps = 1;  // libsodium's minimum: fuzzing is not about hashing
constexpr size_t kMem = 8192;
constexpr int64_t kNowMs = 1'700'000'000'000;

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

void CheckSession(const actors::Reply& r, uint64_t uid) {
  IMBUS_FUZZ_CHECK(r.action == codec::SessionAction::kLogin);
  IMBUS_FUZZ_CHECK(r.session.uid == uid);
  IMBUS_FUZZ_CHECK(!r.session.device.empty() && r.session.device.size() <= 64);
  IMBUS_FUZZ_CHECK(r.session.local_host.size() <= 64);
  IMBUS_FUZZ_CHECK(r.session.public_host == "127.0.0.1");
}

}  // namespace
}  // namespace imbus::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imbus;
  using namespace imbus::fuzz;
  static const std::string alice_hash = [] {
    actors::EnsureSodium();
    return actors::PasswordHasher(kOps, kMem).Hash("password1");
  }();
  Input in;
  if (!SplitInput(data, size, &in)) return 0;
  codec::Body body;
  std::string error;
  if (!codec::Body::Parse(in.body, &body, &error)) return 0;  // the edge answers these

  auto store = std::make_unique<actors::MemoryAuthStore>();
  IMBUS_FUZZ_CHECK(store->CreateUser("alice", alice_hash) == 1u);
  store->SaveToken(actors::TokenHash("fuzz-token"),
                   actors::TokenRecord{1, "default", kNowMs + 60'000}, kNowMs, 32);
  actors::AuthService::Options options;
  options.pwhash_ops = kOps;
  options.pwhash_mem = kMem;
  options.now_ms = [] { return kNowMs; };
  actors::AuthService service(std::move(store), options);

  const codec::RequestMeta meta =
      Caller(codec::ToWire(codec::Service::kAuth), in.command, in.caller);
  const Outcome out = Call(service, meta, body);
  if (out.code != codec::Code::kOk) return 0;
  switch (meta.command) {
    case codec::auth::kRegister: {
      IMBUS_FUZZ_CHECK(ValidName(body.RequireString("name")));
      const size_t password = body.RequireString("password").size();
      IMBUS_FUZZ_CHECK(password >= 6 && password <= 128);
      IMBUS_FUZZ_CHECK(out.body.GetUint("uid") == 2u);
      break;
    }
    case codec::auth::kLogin:
      IMBUS_FUZZ_CHECK(body.RequireString("password") == "password1");
      CheckSession(out.reply, 1);
      IMBUS_FUZZ_CHECK(out.body.GetString("token").value_or("").size() == 43);
      break;
    case codec::auth::kResume:
      IMBUS_FUZZ_CHECK(body.RequireString("token") == "fuzz-token");
      CheckSession(out.reply, 1);
      IMBUS_FUZZ_CHECK(out.reply.session.device == "default");
      break;
    case codec::auth::kLogout:
      IMBUS_FUZZ_CHECK(meta.uid != 0);
      IMBUS_FUZZ_CHECK(out.reply.action == codec::SessionAction::kLogout);
      break;
    case codec::auth::kDeleteAccount:
      IMBUS_FUZZ_CHECK(out.reply.kick_uid == 1);
      break;
    default:
      IMBUS_FUZZ_FAIL("an unknown command succeeded");
  }
  return 0;
}

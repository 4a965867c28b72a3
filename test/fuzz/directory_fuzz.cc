// libFuzzer target: DIRECTORY requests through DirectoryService::Handle on the
// in-memory store. Each input gets a fresh store: users 1 alice, 2 bob, 3 carol;
// alice and bob are friends; group 1 "devs" owned by alice with bob a member; alice
// is online. Input layout: fuzz_util.h (uid 0..3).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/directory/directory_service.h"
#include "actors/directory/memory_directory_store.h"
#include "codec/utf8.h"
#include "actors/sessions.h"
#include "codec/commands.h"
#include "test/fuzz/fuzz_util.h"

namespace {

// The string under `key` when it is one (GetString would throw otherwise).
std::optional<std::string> StringField(const imbus::codec::Body& body, const char* key) {
  try {
    return body.GetString(key);
  } catch (const imbus::codec::BadField&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imbus;
  using namespace imbus::fuzz;
  Input in;
  if (!SplitInput(data, size, &in)) return 0;
  codec::Body body;
  std::string error;
  if (!codec::Body::Parse(in.body, &body, &error)) return 0;

  auto store = std::make_unique<actors::MemoryDirectoryStore>();
  store->AddUser("alice");
  store->AddUser("bob");
  store->AddUser("carol");
  store->AddFriends(1, 2);
  IMBUS_FUZZ_CHECK(store->CreateGroup(1, "devs", "") == 1u);
  store->JoinGroup(1, 2);
  actors::MemorySessions sessions;
  codec::SessionInfo alice;
  alice.uid = 1;
  alice.device = "default";
  sessions.Set(1, {alice});
  actors::DirectoryService service(std::move(store), &sessions);

  const codec::RequestMeta meta =
      Caller(codec::ToWire(codec::Service::kDirectory), in.command, in.caller);
  const Outcome out = Call(service, meta, body);
  // Without a login: every DIRECTORY command needs one (the dispatcher's gate); a
  // command the table does not know is the service's to refuse.
  if (meta.uid == 0) {
    IMBUS_FUZZ_CHECK(out.code == (codec::FindCommand(meta.service, meta.command) != nullptr
                                      ? codec::Code::kUnauthenticated
                                      : codec::Code::kUnsupported));
  }

  if (meta.command == codec::directory::kCreateGroup && meta.uid != 0) {
    // Within the limits, a group is created exactly when name and desc are UTF-8
    // (the columns are utf8mb4: anything else would be a database error).
    const auto name = StringField(body, "name");
    const auto desc = body.Has("desc") ? StringField(body, "desc") : std::string();
    if (name && desc && !name->empty() && name->size() <= 64 && desc->size() <= 512) {
      const bool utf8 = codec::IsValidUtf8(*name) && codec::IsValidUtf8(*desc);
      IMBUS_FUZZ_CHECK((out.code == codec::Code::kOk) == utf8);
    }
    if (out.code == codec::Code::kOk) IMBUS_FUZZ_CHECK(out.body.GetUint("gid") == 2u);
  }
  if (meta.command == codec::directory::kListUsers && out.code == codec::Code::kOk) {
    const msgpack::object* users = out.body.Find("users");
    IMBUS_FUZZ_CHECK(users != nullptr && users->type == msgpack::type::ARRAY);
    IMBUS_FUZZ_CHECK(users->via.array.size <= 3);
    IMBUS_FUZZ_CHECK(out.body.GetUint("total") == 3u);
  }
  return 0;
}

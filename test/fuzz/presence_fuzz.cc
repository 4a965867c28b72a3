// libFuzzer target: PRESENCE requests (IS_ONLINE, PEER_ADDR, the broker's internal
// SESSION_EVENT) through PresenceService::Handle on the in-memory store and
// sessions. Users 1 alice (online, public address), 2 bob (online, public and local
// address), 3 carol (offline), 4 dave (online, a local_host that is not UTF-8);
// alice and bob are friends. Input layout: fuzz_util.h;
// command bytes >= 200 mean SESSION_EVENT (1000).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/directory/memory_directory_store.h"
#include "actors/presence/presence_service.h"
#include "actors/sessions.h"
#include "codec/commands.h"
#include "test/fuzz/fuzz_util.h"

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
  store->AddUser("dave");
  // Everyone befriends everyone: presence answers friends only (issue 18), and
  // PEER_ADDR must reach dave's hostile local_host below.
  for (uint64_t a = 1; a <= 4; ++a) {
    for (uint64_t b = a + 1; b <= 4; ++b) store->AddFriends(a, b);
  }
  actors::MemorySessions sessions;
  codec::SessionInfo s;
  s.uid = 1;
  s.device = "default";
  s.public_host = "192.0.2.1";
  s.public_port = 5000;
  sessions.Set(1, {s});
  s.uid = 2;
  s.device = "phone";
  s.public_host = "192.0.2.2";
  s.local_host = "10.0.0.2";
  s.p2p_port = 6000;
  sessions.Set(2, {s});
  s.uid = 4;
  s.device = "default";
  s.public_host = "192.0.2.4";
  s.local_host = std::string("10.0.0.4\xff\0", 10);  // as a hostile LOGIN declared it
  sessions.Set(4, {s});
  actors::PresenceService service(std::move(store), &sessions);

  const uint16_t command =
      in.command >= 200 ? uint16_t{codec::presence::kSessionEvent} : uint16_t{in.command};
  const codec::RequestMeta meta =
      Caller(codec::ToWire(codec::Service::kPresence), command, in.caller);
  // Call checks that no answer or push carries a str that is not UTF-8: dave's
  // local_host must be left out of PEER_ADDR.
  const Outcome out = Call(service, meta, body);
  if (out.code != codec::Code::kOk) return 0;
  switch (command) {
    case codec::presence::kIsOnline:
      IMBUS_FUZZ_CHECK(meta.uid != 0);
      break;
    case codec::presence::kPeerAddr: {
      IMBUS_FUZZ_CHECK(meta.uid != 0);
      const uint64_t target = body.RequireUint("uid");
      IMBUS_FUZZ_CHECK(target != meta.uid && target >= 1 && target <= 4);
      const bool online = out.body.GetBool("online").value_or(false);
      IMBUS_FUZZ_CHECK(online == (target != 3));
      const std::string ticket = out.body.GetString("ticket").value_or("?");
      IMBUS_FUZZ_CHECK(ticket.size() == (online ? 32u : 0u));
      IMBUS_FUZZ_CHECK(out.reply.pushes.size() == (online ? 1u : 0u));
      if (online) IMBUS_FUZZ_CHECK(out.reply.pushes[0].meta.uids == std::vector<uint64_t>{target});
      break;
    }
    case codec::presence::kSessionEvent:
      IMBUS_FUZZ_CHECK(meta.conn == 0);
      IMBUS_FUZZ_CHECK(out.reply.pushes.size() <= 1);
      break;
    default:
      IMBUS_FUZZ_FAIL("an unknown command succeeded");
  }
  return 0;
}

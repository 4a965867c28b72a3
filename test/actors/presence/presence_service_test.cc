// PresenceService logic on the memory store and MemorySessions: IS_ONLINE,
// PEER_ADDR and its P2P_INCOMING push, STATUS pushes on SESSION_EVENT.
#include "actors/presence/presence_service.h"

#include <gtest/gtest.h>

#include "actors/directory/memory_directory_store.h"
#include "codec/commands.h"
#include "test/actors/service_call.h"

namespace imbus::actors::testing {
namespace {

using codec::Code;
namespace pres = codec::presence;

class PresenceTest : public ::testing::Test {
 protected:
  PresenceTest() {
    auto store = std::make_unique<MemoryDirectoryStore>();
    store_ = store.get();
    service_ = std::make_unique<PresenceService>(std::move(store), &sessions_);
  }
  CallResult Call(uint64_t uid, uint16_t command, const std::string& body,
                  const std::string& device = "default", uint64_t conn = 1) {
    return CallService(*service_, codec::ToWire(codec::Service::kPresence), command, uid, body,
                       device, conn);
  }
  static codec::SessionInfo Session(uint64_t uid, const std::string& device, const std::string& pub,
                                    uint16_t pub_port, const std::string& local = "",
                                    uint16_t p2p = 0) {
    return codec::SessionInfo{uid, device, "n", pub, pub_port, local, p2p};
  }
  // "kind host:port" for each address in an `addrs` array.
  static std::vector<std::string> Addrs(const msgpack::object& addrs) {
    std::vector<std::string> out;
    for (uint32_t i = 0; i < addrs.via.array.size; ++i) {
      std::map<std::string, msgpack::object> m;
      addrs.via.array.ptr[i].convert(m);
      out.push_back(m["kind"].as<std::string>() + " " + m["host"].as<std::string>() + ":" +
                    std::to_string(m["port"].as<uint64_t>()));
    }
    return out;
  }

  MemorySessions sessions_;
  MemoryDirectoryStore* store_;
  std::unique_ptr<PresenceService> service_;
};

TEST_F(PresenceTest, IsOnline) {
  const uint64_t a = store_->AddUser("a");
  const uint64_t b = store_->AddUser("b");
  // Only friends see each other (issue 18).
  EXPECT_EQ(Call(a, pres::kIsOnline, Uint("uid", b)).code, Code::kForbidden);
  EXPECT_EQ(Call(a, pres::kPeerAddr, Uint("uid", b)).code, Code::kForbidden);
  store_->AddFriends(a, b);
  CallResult r = Call(a, pres::kIsOnline, Uint("uid", b));
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetBool("online"), false);
  sessions_.Set(b, {Session(b, "default", "1.1.1.1", 1000)});
  EXPECT_EQ(Call(a, pres::kIsOnline, Uint("uid", b)).body.GetBool("online"), true);
  EXPECT_EQ(Call(a, pres::kIsOnline, Uint("uid", 999)).code, Code::kNotFound);
  EXPECT_EQ(Call(a, pres::kIsOnline, codec::EmptyBody()).code, Code::kBadRequest);
  EXPECT_EQ(Call(0, pres::kIsOnline, Uint("uid", b)).code, Code::kUnauthenticated);
}

TEST_F(PresenceTest, PeerAddrGivesBothAddressesAndPushesTheCallers) {
  const uint64_t a = store_->AddUser("a");
  const uint64_t b = store_->AddUser("b");
  store_->AddFriends(a, b);
  // b offline: no addresses, no ticket, no push.
  CallResult r = Call(a, pres::kPeerAddr, Uint("uid", b));
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetBool("online"), false);
  EXPECT_EQ(r.body.Find("addrs")->via.array.size, 0u);
  EXPECT_EQ(r.body.GetString("ticket"), "");
  EXPECT_TRUE(r.reply.pushes.empty());

  // b on two devices (the newer one is used), a on two devices (its own device's).
  sessions_.Set(b, {Session(b, "old", "9.9.9.9", 9),
                    Session(b, "phone", "2.2.2.2", 2000, "192.168.1.2", 4000)});
  sessions_.Set(a, {Session(a, "laptop", "1.1.1.1", 1000, "10.0.0.1", 3000),
                    Session(a, "tablet", "7.7.7.7", 7)});
  r = Call(a, pres::kPeerAddr, Uint("uid", b), "laptop");
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  EXPECT_EQ(r.body.GetBool("online"), true);
  EXPECT_EQ(Addrs(*r.body.Find("addrs")),
            (std::vector<std::string>{"public 2.2.2.2:2000", "local 192.168.1.2:4000"}));
  const std::string ticket = r.body.GetString("ticket").value_or("");
  EXPECT_EQ(ticket.size(), 2 * PresenceService::kTicketBytes);

  ASSERT_EQ(r.reply.pushes.size(), 1u);
  const Push& push = r.reply.pushes[0];
  EXPECT_EQ(push.meta.uids, std::vector<uint64_t>{b});
  EXPECT_EQ(push.meta.service, codec::ToWire(codec::Service::kPresence));
  EXPECT_EQ(push.meta.command, pres::kP2pIncoming);
  codec::Body pb;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(push.body, &pb, &error)) << error;
  EXPECT_EQ(pb.GetUint("uid"), a);
  EXPECT_EQ(pb.GetString("ticket"), ticket);
  EXPECT_EQ(Addrs(*pb.Find("addrs")),
            (std::vector<std::string>{"public 1.1.1.1:1000", "local 10.0.0.1:3000"}));

  // A fresh ticket per request.
  EXPECT_NE(Call(a, pres::kPeerAddr, Uint("uid", b), "laptop").body.GetString("ticket"), ticket);
  // Errors.
  EXPECT_EQ(Call(a, pres::kPeerAddr, Uint("uid", a), "laptop").code, Code::kBadRequest);
  EXPECT_EQ(Call(a, pres::kPeerAddr, Uint("uid", 999)).code, Code::kNotFound);
}

TEST_F(PresenceTest, SessionEventPushesStatusToFriends) {
  const uint64_t a = store_->AddUser("a");
  const uint64_t b = store_->AddUser("b");
  const uint64_t c = store_->AddUser("c");
  store_->AddUser("stranger");
  store_->AddFriends(a, b);
  store_->AddFriends(a, c);
  codec::MapWriter w(2);
  w.Key("uid").Uint(a).Key("online").Bool(true);
  CallResult r = Call(a, pres::kSessionEvent, w.Finish(), "", /*conn=*/0);
  ASSERT_EQ(r.code, Code::kOk) << r.error;
  ASSERT_EQ(r.reply.pushes.size(), 1u);
  EXPECT_EQ(r.reply.pushes[0].meta.uids, (std::vector<uint64_t>{b, c}));
  EXPECT_EQ(r.reply.pushes[0].meta.command, pres::kStatus);
  codec::Body pb;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(r.reply.pushes[0].body, &pb, &error)) << error;
  EXPECT_EQ(pb.GetUint("uid"), a);
  EXPECT_EQ(pb.GetBool("online"), true);

  codec::MapWriter off(2);
  off.Key("uid").Uint(a).Key("online").Bool(false);
  r = Call(a, pres::kSessionEvent, off.Finish(), "", 0);
  ASSERT_EQ(r.reply.pushes.size(), 1u);
  ASSERT_TRUE(codec::Body::Parse(r.reply.pushes[0].body, &pb, &error)) << error;
  EXPECT_EQ(pb.GetBool("online"), false);

  // No friends: no push. From a client connection: refused.
  codec::MapWriter lonely(2);
  lonely.Key("uid").Uint(4).Key("online").Bool(true);
  EXPECT_TRUE(Call(4, pres::kSessionEvent, lonely.Finish(), "", 0).reply.pushes.empty());
  codec::MapWriter forged(2);
  forged.Key("uid").Uint(a).Key("online").Bool(true);
  EXPECT_EQ(Call(a, pres::kSessionEvent, forged.Finish(), "default", 5).code, Code::kUnsupported);
}

}  // namespace
}  // namespace imbus::actors::testing

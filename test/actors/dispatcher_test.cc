// Dispatcher without sockets or a database: requests past their deadline never
// reach their service (so never the database) and are still answered, once; an
// answer too large for a frame is answered INTERNAL at once, never sent; commands the
// command table marks needs_login never reach their service without a uid; a service
// answers through its {command -> method} table.
#include "actors/dispatcher.h"

#include <gtest/gtest.h>

#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::actors {
namespace {

// Counts what reaches it; command 1 is batchable, like MSG/SEND.
class CountingService : public Service {
 public:
  void Handle(const Request&, Reply*) override { ++handled; }
  bool Batchable(uint16_t command) const override { return command == 1; }
  void HandleBatch(std::vector<BatchItem>& items) override { batched += items.size(); }
  int handled = 0;
  size_t batched = 0;
};

int64_t FixedNow() { return 1000000; }

std::string Meta(uint32_t seq, uint16_t command, int64_t deadline_ms) {
  codec::RequestMeta m;
  m.rid = seq;
  m.seq = seq;
  m.service = 7;
  m.command = command;
  m.uid = 1;
  m.deadline_ms = deadline_ms;
  return codec::PackMeta(m);
}

// The reply codes in order.
std::vector<int64_t> Codes(const std::vector<OutMessage>& out) {
  std::vector<int64_t> codes;
  for (const OutMessage& m : out) {
    if (m.type != codec::BusType::kReply) continue;
    codec::Body body;
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(m.body, &body, &error)) << error;
    codes.push_back(body.GetInt("code").value_or(-1));
  }
  return codes;
}

TEST(DispatcherTest, RequestsPastTheirDeadlineAreAnsweredWithoutReachingTheService) {
  auto owned = std::make_unique<CountingService>();
  CountingService* service = owned.get();
  Dispatcher d;
  d.set_now_ms(FixedNow);
  d.Add(7, std::move(owned));
  const std::string body = codec::EmptyBody();
  const std::string metas[] = {
      Meta(1, 1, FixedNow() + 1),  // batchable, in time
      Meta(2, 1, FixedNow()),      // batchable, due now: too late
      Meta(3, 1, 0),               // no deadline (an older edge)
      Meta(4, 2, FixedNow() - 5),  // one at a time, late
      Meta(5, 2, FixedNow() + 5),  // one at a time, in time
  };
  std::vector<Dispatcher::InRequest> in;
  for (const std::string& m : metas) in.push_back({m, body});
  std::vector<OutMessage> out;
  d.HandleRequests(in, &out);

  const int kUnavailable = static_cast<int>(codec::Code::kUnavailable);
  EXPECT_EQ(Codes(out), (std::vector<int64_t>{0, kUnavailable, 0, kUnavailable, 0}));
  EXPECT_EQ(service->batched, 2u);  // seq 1 and 3, in two runs around the late one
  EXPECT_EQ(service->handled, 1);   // seq 5
  EXPECT_EQ(d.expired(), 2u);
  EXPECT_EQ(d.handled(), 5u);
}

// Answers with a body of `size` bytes (a map with one long string) and one push of
// the same size.
class OversizeService : public Service {
 public:
  explicit OversizeService(size_t size) : size_(size) {}
  void Handle(const Request&, Reply* reply) override {
    OkWriter w(1);
    w.Key("blob").Str(std::string(size_, 'x'));
    reply->body = w.Finish();
    Push p;
    p.meta.uids = {2};
    p.body = reply->body;
    reply->pushes.push_back(std::move(p));
  }

 private:
  size_t size_;
};

TEST(DispatcherTest, AnAnswerTooLargeForAFrameIsAnsweredInternalAndNotSent) {
  const int kInternal = static_cast<int>(codec::Code::kInternal);
  for (size_t size : {size_t{60000}, size_t{70000}, size_t{5} << 20}) {
    Dispatcher d;
    d.Add(7, std::make_unique<OversizeService>(size));
    const std::string meta = Meta(1, 2, 0);
    const std::string body = codec::EmptyBody();
    std::vector<Dispatcher::InRequest> in{{meta, body}};
    std::vector<OutMessage> out;
    d.HandleRequests(in, &out);
    const bool fits = size < 65000;
    EXPECT_EQ(Codes(out), (std::vector<int64_t>{fits ? 0 : kInternal})) << size;
    size_t pushes = 0;
    for (const OutMessage& m : out) {
      EXPECT_LE(m.body.size(), 65536u - 16u) << size;
      pushes += m.type == codec::BusType::kPush;
    }
    EXPECT_EQ(pushes, fits ? 1u : 0u) << size;
  }
}

// A service of DIRECTORY's wire number with one method (LIST_USERS, needs_login) and
// none for the others.
class TableService : public Service {
 public:
  TableService() { Handles(codec::directory::kListUsers, &TableService::ListUsers); }
  int calls = 0;

 private:
  void ListUsers(const Request&, Reply*) { ++calls; }
};

std::vector<OutMessage> Send(Dispatcher& d, uint16_t service, uint16_t command, uint64_t uid) {
  codec::RequestMeta m;
  m.rid = 1;
  m.service = service;
  m.command = command;
  m.uid = uid;
  const std::string meta = codec::PackMeta(m);
  const std::string body = codec::EmptyBody();
  std::vector<OutMessage> out;
  d.HandleRequest(meta, body, &out);
  return out;
}

TEST(DispatcherTest, LoginCommandsWithoutAUidNeverReachTheServiceAndTheTablePicksTheMethod) {
  auto owned = std::make_unique<TableService>();
  TableService* service = owned.get();
  Dispatcher d;
  const uint16_t dir = codec::ToWire(codec::Service::kDirectory);
  d.Add(dir, std::move(owned));
  const int kUnauthenticated = static_cast<int>(codec::Code::kUnauthenticated);
  const int kUnsupported = static_cast<int>(codec::Code::kUnsupported);
  EXPECT_EQ(Codes(Send(d, dir, codec::directory::kListUsers, 0)),
            (std::vector<int64_t>{kUnauthenticated}));
  EXPECT_EQ(service->calls, 0);
  EXPECT_EQ(Codes(Send(d, dir, codec::directory::kListUsers, 5)), (std::vector<int64_t>{0}));
  EXPECT_EQ(service->calls, 1);
  // A command of the protocol the service has no method for, and one the protocol
  // does not have (no login needed to be told so).
  EXPECT_EQ(Codes(Send(d, dir, codec::directory::kGetUser, 5)),
            (std::vector<int64_t>{kUnsupported}));
  EXPECT_EQ(Codes(Send(d, dir, 999, 0)), (std::vector<int64_t>{kUnsupported}));
  EXPECT_EQ(service->calls, 1);
}

}  // namespace
}  // namespace imbus::actors

// In-process broker on tcp://127.0.0.1:*, driven by raw DEALER sockets that speak
// the bus protocol by hand (czmq style): each test is also a usage example of the
// contract in docs/bus.md.
#include "net/clock.h"
#include "broker/broker.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "bus/peer.h"
#include "codec/body.h"
#include "codec/codes.h"
#include "codec/commands.h"
#include "codec/route_key.h"

#include "test/broker/broker_test_peer.h"

namespace imbus::broker {
namespace {

using namespace imbus::broker::testing;  // NOLINT: the shared test peer
using codec::BusType;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST_F(BrokerTest, RoutesRequestToWorkerAndReplyBack) {
  Start();
  auto edge = Peer("edge-a/0");
  auto worker = Peer("msg/1");
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});

  auto req = Request(kMsg, codec::msg::kSend, 5, 9);
  req.uid = 7;
  edge->Send(BusType::kRequest, codec::PackMeta(req), TextBody("hi"));

  codec::RequestMeta got;
  std::string body;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &got, &body));
  EXPECT_NE(got.rid, 0u);
  EXPECT_EQ(got.conn, 5u);
  EXPECT_EQ(got.seq, 9u);
  EXPECT_EQ(got.uid, 7u);
  EXPECT_EQ(body, TextBody("hi"));

  worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(got)), codec::OkBody());
  codec::ReplyMeta reply;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_EQ(reply.conn, 5u);
  EXPECT_EQ(reply.seq, 9u);
  EXPECT_EQ(body, codec::OkBody());
}

TEST_F(BrokerTest, DispatchesToTheWorkerWithFewestOutstanding) {
  Start();
  auto edge = Peer("edge-a/0");
  auto w1 = Peer("msg/1");
  auto w2 = Peer("msg/2");
  edge->Ready("edge", "a");
  w1->Ready("worker", "msg", {"msg"});
  w2->Ready("worker", "msg", {"msg"});

  for (uint64_t conn = 1; conn <= 4; ++conn) {
    edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, conn)),
               TextBody("x"));
  }
  std::vector<codec::RequestMeta> at_w1(2), at_w2(2);
  for (auto& r : at_w1) ASSERT_TRUE(w1->Expect(BusType::kRequest, &r));
  for (auto& r : at_w2) ASSERT_TRUE(w2->Expect(BusType::kRequest, &r));
  EXPECT_FALSE(w1->Recv(200));
  EXPECT_FALSE(w2->Recv(1));

  // w1 finishes its two: the next two go to w1, which now has fewer outstanding.
  for (auto& r : at_w1) w1->Send(BusType::kReply, codec::PackMeta(ReplyTo(r)), codec::OkBody());
  codec::ReplyMeta reply;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  for (uint64_t conn = 5; conn <= 6; ++conn) {
    edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, conn)),
               TextBody("x"));
  }
  codec::RequestMeta r;
  ASSERT_TRUE(w1->Expect(BusType::kRequest, &r));
  ASSERT_TRUE(w1->Expect(BusType::kRequest, &r));
  EXPECT_FALSE(w2->Recv(200));
}

TEST_F(BrokerTest, FullWorkersQueueThenRefuseAtOnceAndExpiredRequestsAreNotSent) {
  Options options;
  options.max_outstanding = 1;
  options.max_queue_wait_ms = 100;
  Start(options);
  auto edge = Peer("edge-a/0");
  auto worker = Peer("msg/1");
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});
  auto send = [&](uint64_t conn, int64_t deadline_ms) {
    auto req = Request(kMsg, codec::msg::kSend, conn);
    req.deadline_ms = deadline_ms;
    edge->Send(BusType::kRequest, codec::PackMeta(req), TextBody("x"));
  };
  const int64_t later = net::WallNowMs() + 60000;

  send(1, later);                    // to the worker, now full
  send(2, later);                    // waits in the queue
  send(3, net::WallNowMs() + 1000);  // waits, but expires there
  codec::RequestMeta first;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &first));
  EXPECT_EQ(first.conn, 1u);
  EXPECT_EQ(first.deadline_ms, later);
  EXPECT_FALSE(worker->Recv(150)) << "a full worker gets no more";

  // The queue has stood for max_queue_wait_ms: refused at once, with retry_ms.
  const auto asked = Clock::now();
  send(4, later);
  codec::ReplyMeta reply;
  std::string body;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_LT(Clock::now() - asked, milliseconds(1000));
  EXPECT_EQ(reply.conn, 4u);
  EXPECT_EQ(CodeOf(body).first, static_cast<int64_t>(codec::Code::kRateLimited));
  EXPECT_EQ(reply.busy_ms, 25u) << "every worker full: the edge refuses for a while too";
  codec::Body parsed;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(body, &parsed, &error));
  EXPECT_GE(parsed.GetInt("retry_ms").value_or(0), 100);

  // conn 3 passes its deadline in the queue: UNAVAILABLE, never sent.
  std::this_thread::sleep_for(milliseconds(1000));
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_EQ(reply.conn, 3u);
  EXPECT_EQ(CodeOf(body).first, static_cast<int64_t>(codec::Code::kUnavailable));

  // A reply makes room: the oldest queued (conn 2) goes out, conn 3 never does.
  worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(first)), codec::OkBody());
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 1u);
  codec::RequestMeta next;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &next));
  EXPECT_EQ(next.conn, 2u);
  EXPECT_FALSE(worker->Recv(200));
  Stop();
  EXPECT_EQ(broker_->counters().busy, 1u);
  EXPECT_EQ(broker_->counters().expired, 1u);
}

// MSG/SEND goes to its conversation's owner. A full owner's conversations wait for
// it in the queue, even while another worker has room (two writers of one
// conversation collide, and each collision stores a batch again); conversations of
// other owners go past them; a reply lets the owner's queued message go to it.
TEST_F(BrokerTest, AFullOwnersConversationsWaitForItWhileOthersGoPast) {
  Options options;
  options.max_outstanding = 1;  // the owner takes its own keys up to 2
  options.max_queue_wait_ms = 200;
  Start(options);
  auto edge = Peer("edge-a/0");
  auto w1 = Peer("msg/1");
  auto w2 = Peer("msg/2");
  edge->Ready("edge", "a");
  w1->Ready("worker", "msg", {"msg"});
  w2->Ready("worker", "msg", {"msg"});
  constexpr uint64_t kSender = 5;
  auto body_to = [](uint64_t to) {
    codec::MapWriter w(2);
    w.Key("to").Uint(to);
    w.Key("text").Str("x");
    return w.Finish();
  };
  // Which worker owns the conversation with each recipient, as the broker decides.
  WorkerPool owners;
  owners.AddWorker("msg/1", {"msg"});
  owners.AddWorker("msg/2", {"msg"});
  uint64_t to1 = 0, to2 = 0;  // recipients whose conversations w1 and w2 own
  for (uint64_t to = 6; to1 == 0 || to2 == 0; ++to) {
    const std::string owner = *owners.Pick("msg", codec::SendRouteKey(kSender, body_to(to)));
    (owner == "msg/1" ? to1 : to2) = to;
  }
  auto send = [&](uint64_t conn, uint64_t to) {
    auto req = Request(kMsg, codec::msg::kSend, conn);
    req.uid = kSender;
    edge->Send(BusType::kRequest, codec::PackMeta(req), body_to(to));
  };

  send(1, to1);
  send(2, to1);  // w1 now holds twice the bound
  send(3, to1);  // waits for w1, though w2 is idle
  send(4, to2);  // w2's conversation: not held up behind conn 3
  std::vector<codec::RequestMeta> at_w1(2);
  ASSERT_TRUE(w1->Expect(BusType::kRequest, &at_w1[0]));
  ASSERT_TRUE(w1->Expect(BusType::kRequest, &at_w1[1]));
  EXPECT_EQ(at_w1[0].conn, 1u);
  EXPECT_EQ(at_w1[1].conn, 2u);
  codec::RequestMeta at_w2;
  ASSERT_TRUE(w2->Expect(BusType::kRequest, &at_w2));
  EXPECT_EQ(at_w2.conn, 4u);
  EXPECT_FALSE(w2->Recv(300)) << "w1's conversation went to w2";
  EXPECT_FALSE(w1->Recv(100)) << "w1 is full";

  // w2 answers: that makes no room in w1, so conn 3 still waits.
  codec::ReplyMeta reply;
  std::string body;
  w2->Send(BusType::kReply, codec::PackMeta(ReplyTo(at_w2)), codec::OkBody());
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 4u);
  EXPECT_FALSE(w1->Recv(200)) << "w1 is still full";
  EXPECT_FALSE(w2->Recv(100)) << "w1's conversation went to w2";

  // Once conn 3 has waited max_queue_wait_ms, w1's next message is refused at once,
  // without busy_ms: w2 has room, so the edge must not refuse the whole service;
  // and w2's conversations still go to w2 at once.
  std::this_thread::sleep_for(milliseconds(250));
  send(5, to1);
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_EQ(reply.conn, 5u);
  EXPECT_EQ(CodeOf(body).first, static_cast<int64_t>(codec::Code::kRateLimited));
  EXPECT_EQ(reply.busy_ms, 0u);
  send(6, to2);
  ASSERT_TRUE(w2->Expect(BusType::kRequest, &at_w2));
  EXPECT_EQ(at_w2.conn, 6u);
  w2->Send(BusType::kReply, codec::PackMeta(ReplyTo(at_w2)), codec::OkBody());
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 6u);

  // w1 answers conn 1: conn 3 goes to w1.
  w1->Send(BusType::kReply, codec::PackMeta(ReplyTo(at_w1[0])), codec::OkBody());
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 1u);
  codec::RequestMeta next;
  ASSERT_TRUE(w1->Expect(BusType::kRequest, &next));
  EXPECT_EQ(next.conn, 3u);
  EXPECT_FALSE(w2->Recv(100));
  Stop();
}

TEST_F(BrokerTest, NoWorkerAnswersUnavailableAfterQueueTimeout) {
  Options options;
  options.queue_timeout_ms = 200;
  Start(options);
  auto edge = Peer("edge-a/0");
  edge->Ready("edge", "a");

  const auto sent = Clock::now();
  edge->Send(BusType::kRequest,
             codec::PackMeta(Request(codec::ToWire(codec::Service::kPresence),
                                     codec::presence::kIsOnline, 3, 4)),
             codec::EmptyBody());
  codec::ReplyMeta reply;
  std::string body;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_GE(Clock::now() - sent, milliseconds(150));
  EXPECT_EQ(reply.conn, 3u);
  EXPECT_EQ(reply.seq, 4u);
  auto [code, error] = CodeOf(body);
  EXPECT_EQ(code, static_cast<int>(codec::Code::kUnavailable));
  EXPECT_EQ(error, "no worker for service presence");

  // A worker that appears within the timeout gets the queued request.
  edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 8)),
             TextBody("late worker"));
  EXPECT_FALSE(edge->Recv(50));
  auto worker = Peer("msg/1");
  worker->Send(BusType::kReady, codec::PackMeta(codec::Ready{"worker", "msg", {"msg"}, "", 0}));
  codec::RequestMeta got;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &got, &body));
  EXPECT_EQ(got.conn, 8u);
  EXPECT_EQ(body, TextBody("late worker"));
}

TEST_F(BrokerTest, DeadWorkerRequestsAreAllAnsweredUnavailable) {
  Options options;
  options.heartbeat_ms = 100;
  options.liveness = 3;
  Start(options);
  auto edge = Peer("edge-a/0");
  auto worker = Peer("msg/1");
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});

  for (uint64_t conn = 1; conn <= 3; ++conn) {
    edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, conn)),
               TextBody("x"));
  }
  codec::RequestMeta got;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(worker->Expect(BusType::kRequest, &got));
  // From here the worker is silent; the edge keeps heartbeating while it waits.
  std::vector<uint64_t> conns;
  for (int i = 0; i < 3; ++i) {
    codec::ReplyMeta reply;
    std::string body;
    ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
    auto [code, error] = CodeOf(body);
    EXPECT_EQ(code, static_cast<int>(codec::Code::kUnavailable));
    EXPECT_NE(error.find("died"), std::string::npos) << error;
    conns.push_back(reply.conn);
  }
  std::sort(conns.begin(), conns.end());
  EXPECT_EQ(conns, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(edge->Stats().workers.empty());
}

TEST_F(BrokerTest, SilentWorkerTimesOutAndLateReplyIsDropped) {
  Options options;
  options.request_timeout_ms = 300;
  Start(options);
  auto edge = Peer("edge-a/0");
  auto worker = Peer("msg/1");
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});
  edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, 2)),
             codec::EmptyBody());
  codec::RequestMeta got;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &got));
  codec::ReplyMeta reply;
  std::string body;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
  EXPECT_EQ(CodeOf(body).second, "timed out waiting for the worker");

  worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(got)), codec::OkBody());
  EXPECT_FALSE(edge->Recv(300));  // exactly one reply per request
  Stop();
  EXPECT_EQ(broker_->counters().late_replies, 1u);
}

TEST_F(BrokerTest, LoginBindsAndSameDeviceLoginElsewhereKicksTheFirst) {
  Start();
  auto e1 = Peer("edge-a/0");
  auto e2 = Peer("edge-b/0");
  auto worker = Peer("auth/1");
  e1->Ready("edge", "a");
  e2->Ready("edge", "b");
  worker->Ready("worker", "auth", {"auth"});

  auto login = [&](TestPeer& edge, uint64_t conn) {
    edge.Send(BusType::kRequest, codec::PackMeta(Request(kAuth, codec::auth::kLogin, conn)),
              codec::EmptyBody());
    codec::RequestMeta got;
    ASSERT_TRUE(worker->Expect(BusType::kRequest, &got));
    auto reply = ReplyTo(got);
    reply.action = static_cast<uint8_t>(codec::SessionAction::kLogin);
    reply.session.uid = 42;
    reply.session.device = "pc";
    worker->Send(BusType::kReply, codec::PackMeta(reply), codec::OkBody());
  };
  login(*e1, 1);
  codec::ReplyMeta reply;
  ASSERT_TRUE(e1->Expect(BusType::kReply, &reply));
  EXPECT_EQ(e1->Stats().sessions, 1u);

  login(*e2, 2);
  codec::KickMeta kick;
  ASSERT_TRUE(e1->Expect(BusType::kKick, &kick));
  EXPECT_EQ(kick.conn, 1u);
  EXPECT_EQ(kick.reason, "logged in on the same device elsewhere");
  ASSERT_TRUE(e2->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 2u);
  EXPECT_EQ(e2->Stats().sessions, 1u);

  // Pushes to uid 42 now reach only the second connection.
  codec::PushMeta push{{42}, kMsg, codec::msg::kMessage, 0};
  worker->Send(BusType::kPush, codec::PackMeta(push), TextBody("p"));
  codec::EdgePushMeta out;
  ASSERT_TRUE(e2->Expect(BusType::kPush, &out));
  EXPECT_EQ(out.conns, (std::vector<uint64_t>{2}));
  EXPECT_FALSE(e1->Recv(100));
}

TEST_F(BrokerTest, PushIsGroupedPerEdgeAndSkipsTheSender) {
  Start();
  auto e1 = Peer("edge-a/0");
  auto e2 = Peer("edge-b/0");
  auto worker = Peer("msg/1");
  e1->Ready("edge", "a");
  e2->Ready("edge", "b");
  worker->Ready("worker", "msg", {"msg"});
  auto bind = [](TestPeer& edge, uint64_t conn, uint64_t uid, const std::string& device) {
    codec::BindMeta b;
    b.conn = conn;
    b.session.uid = uid;
    b.session.device = device;
    edge.Send(BusType::kBind, codec::PackMeta(b));
  };
  bind(*e1, 1, 1, "pc");
  bind(*e1, 2, 1, "phone");
  bind(*e1, 3, 2, "pc");
  bind(*e2, 7, 2, "phone");
  bind(*e2, 8, 3, "pc");
  e1->Stats();
  EXPECT_EQ(e2->Stats().sessions, 5u);

  codec::PushMeta push{{1, 2, 1}, kMsg, codec::msg::kMessage, 0};
  worker->Send(BusType::kPush, codec::PackMeta(push), TextBody("p1"));
  codec::EdgePushMeta out;
  std::string body;
  ASSERT_TRUE(e1->Expect(BusType::kPush, &out, &body));
  std::sort(out.conns.begin(), out.conns.end());
  EXPECT_EQ(out.conns, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(out.command, codec::msg::kMessage);
  EXPECT_EQ(body, TextBody("p1"));
  ASSERT_TRUE(e2->Expect(BusType::kPush, &out));
  EXPECT_EQ(out.conns, (std::vector<uint64_t>{7}));

  // A push caused by conn 1's request leaves conn 1 out, and precedes the reply.
  e1->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 1)), TextBody("m"));
  codec::RequestMeta got;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &got));
  push.skip_rid = got.rid;
  worker->Send(BusType::kPush, codec::PackMeta(push), TextBody("p2"));
  worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(got)), codec::OkBody());
  ASSERT_TRUE(e1->Expect(BusType::kPush, &out));
  std::sort(out.conns.begin(), out.conns.end());
  EXPECT_EQ(out.conns, (std::vector<uint64_t>{2, 3}));
  codec::ReplyMeta reply;
  ASSERT_TRUE(e1->Expect(BusType::kReply, &reply));
  ASSERT_TRUE(e2->Expect(BusType::kPush, &out));
  EXPECT_EQ(out.conns, (std::vector<uint64_t>{7}));

  // UNBIND removes a connection from later pushes.
  e2->Send(BusType::kUnbind, codec::PackMeta(codec::UnbindMeta{7}));
  e2->Stats();
  push.skip_rid = 0;
  worker->Send(BusType::kPush, codec::PackMeta(push), TextBody("p3"));
  ASSERT_TRUE(e1->Expect(BusType::kPush, &out));
  EXPECT_FALSE(e2->Recv(200));
}

// The real peer side (bus::BusPeer) against the broker: READY on construction,
// request out, reply back, and a BusPeer whose broker forgot it announces again.
TEST_F(BrokerTest, WorksWithBusPeer) {
  Start();
  bus::BusPeer::Options eo;
  eo.endpoint = broker_->endpoint();
  eo.ready = codec::Ready{"edge", "a", {}, "127.0.0.1", 7000};
  eo.identity_prefix = "edge-a/0";
  bus::BusPeer edge(ctx_, eo);
  bus::BusPeer::Options wo;
  wo.endpoint = broker_->endpoint();
  wo.ready = codec::Ready{"worker", "msg", {"msg"}, "", 0};
  wo.identity_prefix = "msg";
  bus::BusPeer worker(ctx_, wo);

  ASSERT_TRUE(edge.Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 12, 3)),
                        TextBody("via peer")));
  bus::BusMessage m;
  const auto end = Clock::now() + milliseconds(3000);
  bool got_request = false;
  while (!got_request && Clock::now() < end) {
    worker.WaitReadable(20);
    got_request = worker.TryRecv(&m);
  }
  ASSERT_TRUE(got_request);
  ASSERT_EQ(m.type, BusType::kRequest);
  codec::RequestMeta req;
  ASSERT_TRUE(codec::UnpackMeta(m.meta, &req));
  EXPECT_EQ(m.body, TextBody("via peer"));
  ASSERT_TRUE(worker.Send(BusType::kReply, codec::PackMeta(ReplyTo(req)), codec::OkBody()));

  bool got_reply = false;
  while (!got_reply && Clock::now() < end) {
    edge.WaitReadable(20);
    got_reply = edge.TryRecv(&m);
  }
  ASSERT_TRUE(got_reply);
  EXPECT_EQ(m.type, BusType::kReply);
  codec::ReplyMeta reply;
  ASSERT_TRUE(codec::UnpackMeta(m.meta, &reply));
  EXPECT_EQ(reply.conn, 12u);
  EXPECT_EQ(reply.seq, 3u);
}

// What one turn of the broker has for an edge that takes batches goes as one kBatch,
// in order; an edge that did not announce kFeatureBatch gets the same one by one. A
// worker's kBatch is taken apart as if each item had come alone.
TEST_F(BrokerTest, RepliesAndPushesOfOneTurnGoAsOneBatchToEdgesThatTakeIt) {
  Start();
  auto fresh = Peer("edge-new/0");
  auto old = Peer("edge-old/0");
  auto worker = Peer("msg/1");
  fresh->features = codec::kFeatureBatch;
  fresh->Ready("edge", "new");
  old->Ready("edge", "old");
  worker->Ready("worker", "msg", {"msg"});
  codec::BindMeta b;
  b.conn = 50;
  b.session.uid = 9;
  b.session.device = "pc";
  fresh->Send(BusType::kBind, codec::PackMeta(b));
  b.conn = 60;
  b.session.device = "tablet";
  old->Send(BusType::kBind, codec::PackMeta(b));
  b.conn = 61;
  b.session.device = "phone";
  old->Send(BusType::kBind, codec::PackMeta(b));
  EXPECT_EQ(old->Stats().sessions, 3u);

  std::vector<codec::RequestMeta> got(4);
  for (uint32_t i = 0; i < 4; ++i) {
    TestPeer& edge = i % 2 == 0 ? *fresh : *old;
    edge.Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 10 + i, i + 1)),
              TextBody("m"));
    ASSERT_TRUE(worker->Expect(BusType::kRequest, &got[i]));
  }
  codec::BatchWriter batch;
  for (const codec::RequestMeta& r : got) {
    batch.Add(BusType::kReply, codec::PackMeta(ReplyTo(r)), codec::OkBody());
  }
  batch.Add(BusType::kPush, codec::PackMeta(codec::PushMeta{{9}, kMsg, codec::msg::kMessage, 0}),
            TextBody("p"));
  worker->Send(BusType::kBatch, {}, batch.data());

  // The new edge: its two replies and its push in one message, in the worker's order.
  auto m = fresh->Recv();
  ASSERT_TRUE(m);
  ASSERT_EQ(m->type, BusType::kBatch);
  auto items = Items(*m);
  ASSERT_TRUE(items);
  std::vector<uint64_t> conns;
  for (const bus::BusMessage& item : *items) {
    if (item.type == BusType::kReply) {
      codec::ReplyMeta reply;
      ASSERT_TRUE(codec::UnpackMeta(item.meta, &reply));
      conns.push_back(reply.conn);
    } else {
      ASSERT_EQ(item.type, BusType::kPush);
      codec::EdgePushMeta push;
      ASSERT_TRUE(codec::UnpackMeta(item.meta, &push));
      EXPECT_EQ(push.conns, (std::vector<uint64_t>{50}));
      EXPECT_EQ(item.body, TextBody("p"));
      conns.push_back(0);
    }
  }
  EXPECT_EQ(conns, (std::vector<uint64_t>{10, 12, 0}));
  EXPECT_FALSE(fresh->Recv(200)) << "everything came in the one batch";

  // The old edge: the same, one message each.
  codec::ReplyMeta reply;
  ASSERT_TRUE(old->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 11u);
  ASSERT_TRUE(old->Expect(BusType::kReply, &reply));
  EXPECT_EQ(reply.conn, 13u);
  codec::EdgePushMeta push;
  ASSERT_TRUE(old->Expect(BusType::kPush, &push));
  std::sort(push.conns.begin(), push.conns.end());
  EXPECT_EQ(push.conns, (std::vector<uint64_t>{60, 61}));

  // A malformed batch is counted, and what came before the bad item still counts.
  const uint64_t malformed = broker_->counters().malformed;
  std::string bad = batch.data();
  bad.resize(bad.size() - 1);
  worker->Send(BusType::kBatch, {}, bad);
  worker->Stats();  // the batch was read before this answer
  EXPECT_EQ(broker_->counters().malformed, malformed + 1);
}

// The requests one turn of the broker hands a worker that takes batches go as one
// kBatch, in order (the edge's batch here makes them one turn).
TEST_F(BrokerTest, RequestsOfOneTurnGoAsOneBatchToWorkersThatTakeIt) {
  Start();
  auto edge = Peer("edge-a/0");
  auto worker = Peer("msg/1");
  edge->features = codec::kFeatureBatch;
  worker->features = codec::kFeatureBatch;
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});

  codec::BatchWriter requests;
  for (uint64_t conn = 1; conn <= 3; ++conn) {
    requests.Add(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, conn)),
                 TextBody("r" + std::to_string(conn)));
  }
  edge->Send(BusType::kBatch, {}, requests.data());

  auto m = worker->Recv();
  ASSERT_TRUE(m);
  ASSERT_EQ(m->type, BusType::kBatch);
  auto items = Items(*m);
  ASSERT_TRUE(items);
  std::vector<codec::RequestMeta> got;
  for (const bus::BusMessage& item : *items) {
    ASSERT_EQ(item.type, BusType::kRequest);
    codec::RequestMeta r;
    ASSERT_TRUE(codec::UnpackMeta(item.meta, &r));
    EXPECT_EQ(item.body, TextBody("r" + std::to_string(r.conn)));
    got.push_back(r);
  }
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].conn, i + 1);
  EXPECT_FALSE(worker->Recv(200)) << "everything came in the one batch";

  // Each is answered as usual.
  for (const codec::RequestMeta& r : got) {
    worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(r)), codec::OkBody());
  }
  std::vector<uint64_t> answered;
  while (answered.size() < 3) {
    auto reply = edge->Recv();
    ASSERT_TRUE(reply);
    auto replies = Items(*reply);
    ASSERT_TRUE(replies);
    for (const bus::BusMessage& item : *replies) {
      codec::ReplyMeta rm;
      ASSERT_TRUE(codec::UnpackMeta(item.meta, &rm));
      EXPECT_EQ(CodeOf(item.body).first, 0);
      answered.push_back(rm.conn);
    }
  }
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(answered, (std::vector<uint64_t>{1, 2, 3}));
}

// A worker's connection is gone (killed) while the broker still counts it alive: the
// batch for it cannot be sent, and its request goes to the other worker instead of
// failing; what the dead worker held before is answered UNAVAILABLE.
TEST_F(BrokerTest, ABatchForAWorkerWhoseConnectionIsGoneGoesToAnother) {
  Start();
  auto edge = Peer("edge-a/0");
  auto dead = Peer("msg/1");
  auto live = Peer("msg/2");
  dead->features = codec::kFeatureBatch;
  live->features = codec::kFeatureBatch;
  edge->Ready("edge", "a");
  dead->Ready("worker", "msg", {"msg"});
  live->Ready("worker", "msg", {"msg"});

  // One request each (the fewest outstanding, in turn).
  for (uint64_t conn = 1; conn <= 2; ++conn) {
    edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, conn)),
               TextBody("x"));
  }
  codec::RequestMeta held, at_live;
  ASSERT_TRUE(dead->Expect(BusType::kRequest, &held));
  ASSERT_TRUE(live->Expect(BusType::kRequest, &at_live));
  dead.reset();  // its socket closes; the broker's heartbeat liveness has not run out
  std::this_thread::sleep_for(milliseconds(300));

  // The next pick is the dead worker (equal loads, its turn): the send fails.
  edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, 3)),
             TextBody("y"));
  codec::RequestMeta moved;
  std::string body;
  ASSERT_TRUE(live->Expect(BusType::kRequest, &moved, &body));
  EXPECT_EQ(moved.conn, 3u);
  EXPECT_EQ(body, TextBody("y"));
  live->Send(BusType::kReply, codec::PackMeta(ReplyTo(moved)), codec::OkBody());

  std::map<uint64_t, int64_t> codes;
  for (int i = 0; i < 2; ++i) {
    codec::ReplyMeta reply;
    ASSERT_TRUE(edge->Expect(BusType::kReply, &reply, &body));
    codes[reply.conn] = CodeOf(body).first;
  }
  EXPECT_EQ(codes[1], static_cast<int64_t>(codec::Code::kUnavailable));  // held by the dead
  EXPECT_EQ(codes[3], 0);                                                // moved, answered
  EXPECT_EQ(edge->Stats().workers.size(), 1u);
}

// A heartbeat is not batched: sending it flushes what waits for its peer first. A
// worker whose connection is gone fails that flush in the middle of the heartbeat
// round over every peer; it must leave the peer table intact (the round goes on) and
// still hand the unsent requests to another worker. The broker is driven from this
// thread (RunFor) so that requests and a due heartbeat fall in one turn.
TEST_F(BrokerTest, AFailedFlushDuringTheHeartbeatRoundMovesTheRequestsOn) {
  Options options;
  options.heartbeat_ms = 100;
  options.liveness = 100;  // no peer goes silent in this test
  Start(options);
  auto edge = Peer("edge-a/0");
  std::vector<std::unique_ptr<TestPeer>> dead;
  for (int i = 0; i < 8; ++i) {
    dead.push_back(Peer("msg/dead/" + std::to_string(i)));
    dead.back()->features = codec::kFeatureBatch;
  }
  auto live = Peer("msg/live");
  live->features = codec::kFeatureBatch;
  edge->Ready("edge", "a");
  for (auto& d : dead) d->Ready("worker", "msg", {"msg"});
  live->Ready("worker", "msg", {"msg"});
  Stop();
  dead.clear();  // their sockets close; the broker's heartbeat liveness has not run out
  std::this_thread::sleep_for(milliseconds(300));  // a heartbeat round is due

  // One request per worker (the fewest outstanding, in turn): most go to the dead.
  constexpr uint64_t kRequests = 9;
  for (uint64_t conn = 1; conn <= kRequests; ++conn) {
    edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, conn)),
               TextBody("x"));
  }
  std::this_thread::sleep_for(milliseconds(50));  // all in the broker's socket
  broker_->RunFor(milliseconds(50));
  stop_ = false;
  thread_ = std::thread([this] { broker_->Run(stop_); });

  // What arrives, one by one or batched, until `n` items or a quiet 3 s.
  auto receive = [](TestPeer& peer, size_t n) {
    std::vector<bus::BusMessage> got;
    while (got.size() < n) {
      auto m = peer.Recv();
      if (!m) break;
      if (m->type != BusType::kBatch) {
        got.push_back(*m);
        continue;
      }
      auto items = Items(*m);
      EXPECT_TRUE(items);
      if (items) got.insert(got.end(), items->begin(), items->end());
    }
    return got;
  };
  const std::vector<bus::BusMessage> requests = receive(*live, kRequests);
  ASSERT_EQ(requests.size(), kRequests) << "not every request reached the live worker";
  for (const bus::BusMessage& m : requests) {
    codec::RequestMeta req;
    ASSERT_EQ(m.type, BusType::kRequest);
    ASSERT_TRUE(codec::UnpackMeta(m.meta, &req));
    live->Send(BusType::kReply, codec::PackMeta(ReplyTo(req)), codec::OkBody());
  }
  std::set<uint64_t> answered;
  for (const bus::BusMessage& m : receive(*edge, kRequests)) {
    codec::ReplyMeta reply;
    ASSERT_EQ(m.type, BusType::kReply);
    ASSERT_TRUE(codec::UnpackMeta(m.meta, &reply));
    EXPECT_EQ(CodeOf(m.body).first, 0) << "conn " << reply.conn;
    answered.insert(reply.conn);
  }
  EXPECT_EQ(answered.size(), kRequests);
  EXPECT_EQ(edge->Stats().workers.size(), 1u);
}

// bus::BusPeer at both ends: the worker's SendBatch arrives at the edge item by item.
TEST_F(BrokerTest, BusPeersExchangeBatchesTransparently) {
  Start();
  bus::BusPeer::Options eo;
  eo.endpoint = broker_->endpoint();
  eo.ready = codec::Ready{"edge", "a", {}, "127.0.0.1", 7000};
  eo.identity_prefix = "edge-a/0";
  bus::BusPeer edge(ctx_, eo);
  bus::BusPeer::Options wo;
  wo.endpoint = broker_->endpoint();
  wo.ready = codec::Ready{"worker", "msg", {"msg"}, "", 0};
  wo.identity_prefix = "msg";
  bus::BusPeer worker(ctx_, wo);

  constexpr uint32_t kRequests = 20;
  for (uint32_t i = 1; i <= kRequests; ++i) {
    ASSERT_TRUE(edge.Send(BusType::kRequest,
                          codec::PackMeta(Request(kMsg, codec::msg::kSend, 100 + i, i)),
                          TextBody("x")));
  }
  codec::BatchWriter replies;
  bus::BusMessage m;
  const auto end = Clock::now() + milliseconds(5000);
  while (replies.count() < kRequests && Clock::now() < end) {
    worker.WaitReadable(20);
    while (worker.TryRecv(&m)) {
      codec::RequestMeta req;
      ASSERT_TRUE(codec::UnpackMeta(m.meta, &req));
      replies.Add(BusType::kReply, codec::PackMeta(ReplyTo(req)), codec::OkBody());
    }
  }
  ASSERT_EQ(replies.count(), kRequests);
  ASSERT_TRUE(worker.SendBatch(replies));
  std::vector<uint32_t> seqs;
  while (seqs.size() < kRequests && Clock::now() < end) {
    edge.WaitReadable(20);
    while (edge.TryRecv(&m)) {
      ASSERT_EQ(m.type, BusType::kReply);
      codec::ReplyMeta reply;
      ASSERT_TRUE(codec::UnpackMeta(m.meta, &reply));
      seqs.push_back(reply.seq);
    }
  }
  ASSERT_EQ(seqs.size(), kRequests);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << "the worker's order is kept";
}

TEST_F(BrokerTest, UnknownIdentityGetsUnknownPeer) {
  Start();
  auto stranger = Peer("stranger");
  stranger->beat = false;  // exactly the two messages below, nothing else
  stranger->Send(BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{}));
  auto m = stranger->Recv();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, BusType::kUnknownPeer);
  stranger->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 1)),
                 codec::EmptyBody());
  m = stranger->Recv();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, BusType::kUnknownPeer);

  // After READY it is known: its heartbeats (sent while waiting) draw no answer.
  stranger->beat = true;
  stranger->Ready("edge", "s");
  EXPECT_FALSE(stranger->Recv(200));
}

TEST_F(BrokerTest, RouteAnswersTheEdgeWithTheLeastSummedLoad) {
  Start();
  auto a0 = Peer("edge-a/0");
  auto a1 = Peer("edge-a/1");
  auto b0 = Peer("edge-b/0");
  a0->Ready("edge", "a", {}, "10.0.0.1", 7001);
  a1->Ready("edge", "a", {}, "10.0.0.1", 7001);
  b0->Ready("edge", "b", {}, "10.0.0.2", 7002);
  // a's threads are each lighter than b, but a as a whole is heavier.
  a0->load = 5;
  a1->load = 6;
  b0->load = 8;
  for (TestPeer* p : {a0.get(), a1.get(), b0.get()}) {
    p->Send(BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{p->load}));
    p->Stats();
  }

  a0->Send(BusType::kRequest,
           codec::PackMeta(Request(codec::ToWire(codec::Service::kSys), codec::sys::kRoute, 4, 11)),
           codec::EmptyBody());
  codec::ReplyMeta reply;
  std::string body;
  ASSERT_TRUE(a0->Expect(BusType::kReply, &reply, &body));
  EXPECT_EQ(reply.conn, 4u);
  EXPECT_EQ(reply.seq, 11u);
  codec::Body parsed;
  std::string error;
  ASSERT_TRUE(codec::Body::Parse(body, &parsed, &error)) << error;
  EXPECT_EQ(parsed.GetInt("code"), 0);
  EXPECT_EQ(parsed.GetString("host"), "10.0.0.2");
  EXPECT_EQ(parsed.GetUint("port"), 7002u);
  const msgpack::object* edges = parsed.Find("edges");
  ASSERT_NE(edges, nullptr);
  ASSERT_EQ(edges->type, msgpack::type::ARRAY);
  std::map<uint64_t, uint64_t> load_by_port;
  for (const auto& e : edges->as<std::vector<std::map<std::string, msgpack::object>>>()) {
    load_by_port[e.at("port").as<uint64_t>()] = e.at("load").as<uint64_t>();
  }
  EXPECT_EQ(load_by_port, (std::map<uint64_t, uint64_t>{{7001, 11}, {7002, 8}}));
}

}  // namespace
}  // namespace imbus::broker

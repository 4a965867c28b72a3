// The broker after a restart and in a pair (docs/bus.md "Restarts and failover",
// "A broker pair"), in-process with raw DEALER peers: READY is acknowledged with the
// broker's incarnation, announcing again changes nothing, sessions carried over from
// a previous broker are no news, sessions that closed while no broker heard are told
// offline, and the split-brain rule of a pair holds across a partition.
#include <atomic>
#include <set>
#include <thread>

#include "test/broker/broker_test_peer.h"
#include "test/support/process.h"

namespace imbus::broker {
namespace {

using namespace imbus::broker::testing;  // NOLINT: the shared test peer
using codec::BusType;
using std::chrono::milliseconds;
constexpr uint16_t kPresence = codec::ToWire(codec::Service::kPresence);

codec::SessionInfo Session(uint64_t uid, const std::string& device = "phone") {
  codec::SessionInfo s;
  s.uid = uid;
  s.device = device;
  return s;
}

// The presence worker's view: SESSION_EVENTs, answered so the broker forgets them.
struct Event {
  uint64_t uid;
  bool online;
};
std::optional<Event> NextEvent(TestPeer& presence, int timeout_ms) {
  codec::RequestMeta req;
  std::string body;
  auto m = presence.Recv(timeout_ms);
  if (!m) return std::nullopt;
  EXPECT_EQ(m->type, BusType::kRequest);
  if (m->type != BusType::kRequest || !codec::UnpackMeta(m->meta, &req)) return std::nullopt;
  EXPECT_EQ(req.command, codec::presence::kSessionEvent);
  presence.Send(BusType::kReply, codec::PackMeta(ReplyTo(req)), codec::OkBody());
  codec::Body parsed;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(m->body, &parsed, &error)) << error;
  return Event{parsed.GetUint("uid").value_or(0), parsed.GetBool("online").value_or(false)};
}

TEST_F(BrokerTest, ReadyIsAnsweredWithTheIncarnationAndUnknownPeerCarriesIt) {
  Start();
  auto edge = Peer("edge-a/0");
  edge->keep_heartbeats = true;
  edge->beat = false;
  edge->Send(BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{}));
  codec::Heartbeat unknown;
  ASSERT_TRUE(edge->Expect(BusType::kUnknownPeer, &unknown));
  EXPECT_EQ(unknown.incarnation, broker_->incarnation());
  EXPECT_NE(broker_->incarnation(), 0u);
  edge->Send(BusType::kReady, codec::PackMeta(codec::Ready{"edge", "a", {}, "127.0.0.1", 7000}));
  codec::Heartbeat ack;
  ASSERT_TRUE(edge->Expect(BusType::kHeartbeat, &ack));
  EXPECT_EQ(ack.incarnation, broker_->incarnation());
  const codec::StatsMeta stats = edge->Stats();
  EXPECT_EQ(stats.incarnation, broker_->incarnation());
  EXPECT_EQ(stats.edge_readies, 1u);
  EXPECT_EQ(stats.ha_state, "standalone");
}

TEST_F(BrokerTest, AnEdgeAnnouncingAgainKeepsItsSessionsAndNobodyHearsOfIt) {
  Start();
  auto presence = Peer("presence/1");
  presence->Ready("worker", "presence", {"presence"});
  auto edge = Peer("edge-a/0");
  edge->Ready("edge", "a");
  for (uint64_t uid : {7, 8}) {
    edge->Send(BusType::kBind, codec::PackMeta(codec::BindMeta{uid, Session(uid), 0}));
  }
  std::vector<uint64_t> online;
  for (int i = 0; i < 2; ++i) {
    auto e = NextEvent(*presence, 3000);
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->online);
    online.push_back(e->uid);
  }
  std::sort(online.begin(), online.end());
  EXPECT_EQ(online, (std::vector<uint64_t>{7, 8}));

  // The edge's connection dropped and came back: READY and every BIND again.
  edge->Ready("edge", "a");
  for (uint64_t uid : {7, 8}) {
    edge->Send(BusType::kBind,
               codec::PackMeta(codec::BindMeta{uid, Session(uid), broker_->incarnation()}));
  }
  const codec::StatsMeta stats = edge->Stats();
  EXPECT_EQ(stats.sessions, 2u);
  EXPECT_EQ(stats.edge_readies, 2u);
  EXPECT_EQ(stats.session_events, 2u) << "a re-bind fired presence events";
  EXPECT_FALSE(NextEvent(*presence, 300).has_value());
}

TEST_F(BrokerTest, CarriedOverSessionsAreNoNewsAndDepartedUsersAreToldOffline) {
  Options o;
  o.departed_settle_ms = 300;
  Start(o);
  auto presence = Peer("presence/1");
  presence->Ready("worker", "presence", {"presence"});
  auto e1 = Peer("edge-a/0");
  auto e2 = Peer("edge-b/0");
  e1->Ready("edge", "a");
  e2->Ready("edge", "b");
  constexpr uint64_t kOld = 0x1234;  // the incarnation of the broker before us
  // Users 7 (phone on a, laptop on b) and 8 (on a) stayed connected through the
  // restart; 7's laptop, 9 and 10 closed while no broker ran.
  e1->Send(BusType::kBind, codec::PackMeta(codec::BindMeta{1, Session(7), kOld}));
  e1->Send(BusType::kBind, codec::PackMeta(codec::BindMeta{2, Session(8), kOld}));
  codec::DepartedMeta gone;
  gone.bound_at = kOld;
  gone.sessions = {{5, 7}, {6, 9}, {7, 10}, {8, 10}};
  EXPECT_EQ(e1->Stats().sessions, 2u);
  e2->Send(BusType::kDeparted, codec::PackMeta(gone));
  EXPECT_EQ(e2->Stats().sessions, 2u);

  std::vector<uint64_t> offline;
  for (int i = 0; i < 2; ++i) {
    auto e = NextEvent(*presence, 3000);
    ASSERT_TRUE(e.has_value()) << "no offline event for a departed user";
    EXPECT_FALSE(e->online) << "uid " << e->uid;
    offline.push_back(e->uid);
  }
  std::sort(offline.begin(), offline.end());
  EXPECT_EQ(offline, (std::vector<uint64_t>{9, 10}));
  EXPECT_FALSE(NextEvent(*presence, 500).has_value()) << "news about a user who stayed";

  // A late re-bind of a user told offline is news after all.
  e2->Send(BusType::kBind, codec::PackMeta(codec::BindMeta{9, Session(9), kOld}));
  auto back = NextEvent(*presence, 3000);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->uid, 9u);
  EXPECT_TRUE(back->online);
}

// A relay on the state link between two brokers: cut() is a network partition.
class StateRelay {
 public:
  StateRelay(zmq::context_t& ctx, const std::string& from)
      : sub_(ctx, zmq::socket_type::sub), pub_(ctx, zmq::socket_type::pub) {
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::linger, 0);
    sub_.connect(from);
    pub_.bind("tcp://127.0.0.1:*");
    endpoint_ = pub_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] {
      while (!stop_) {
        zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, milliseconds(10));
        zmq::message_t m;
        while (sub_.recv(m, zmq::recv_flags::dontwait)) {
          if (!cut_) (void)pub_.send(m, zmq::send_flags::dontwait);
        }
      }
    });
  }
  ~StateRelay() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  void Cut() { cut_ = true; }
  void Heal() { cut_ = false; }

 private:
  zmq::socket_t sub_;
  zmq::socket_t pub_;
  std::string endpoint_;
  std::atomic<bool> cut_{false}, stop_{false};
  std::thread thread_;
};

class BrokerPairTest : public ::testing::Test {
 protected:
  static constexpr int kHeartbeatMs = 100;  // the other is gone after 200 ms

  void SetUp() override {
    const std::string state_a = "tcp://127.0.0.1:" + std::to_string(imbus::testing::FreePort());
    const std::string state_b = "tcp://127.0.0.1:" + std::to_string(imbus::testing::FreePort());
    relay_to_b_ = std::make_unique<StateRelay>(ctx_, state_a);
    relay_to_a_ = std::make_unique<StateRelay>(ctx_, state_b);
    for (int i = 0; i < 2; ++i) {
      Options o;
      o.bind = "tcp://127.0.0.1:*";
      o.heartbeat_ms = kHeartbeatMs;
      o.ha_bind = i == 0 ? state_a : state_b;
      o.ha_peer = i == 0 ? relay_to_a_->endpoint() : relay_to_b_->endpoint();
      o.ha_backup = i == 1;
      brokers_[i] = std::make_unique<Broker>(ctx_, o);
      threads_[i] = std::thread([this, i] { brokers_[i]->Run(stop_[i]); });
    }
  }
  void TearDown() override {
    for (auto& s : stop_) s = true;
    for (auto& t : threads_) t.join();
  }

  std::unique_ptr<TestPeer> PeerOf(int broker, const std::string& identity) {
    return std::make_unique<TestPeer>(ctx_, brokers_[broker]->endpoint(), identity);
  }
  std::string StateOf(int broker) {
    auto control = PeerOf(broker, "control-" + std::to_string(n_++));
    return control->Stats().ha_state;
  }
  bool WaitState(int broker, const std::string& want) {
    const auto end = Clock::now() + milliseconds(5000);
    while (Clock::now() < end) {
      if (StateOf(broker) == want) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  zmq::context_t ctx_;
  std::unique_ptr<StateRelay> relay_to_a_, relay_to_b_;
  std::unique_ptr<Broker> brokers_[2];
  std::thread threads_[2];
  // One flag per broker: stopping one must never depend on when the other's loop
  // looks at a shared flag (it could miss a brief true and run on, unjoinable).
  std::atomic<bool> stop_[2] = {false, false};
  int n_ = 0;
};

TEST_F(BrokerPairTest, ThePassiveTurnsPeersAwayAndAPartitionAloneNeverMakesItActive) {
  ASSERT_TRUE(WaitState(0, "active"));
  ASSERT_TRUE(WaitState(1, "passive"));

  // A peer that comes to the passive one is told so (it moves to the other).
  auto stray = PeerOf(1, "edge-x/0");
  stray->beat = false;
  stray->Send(BusType::kReady, codec::PackMeta(codec::Ready{"edge", "x", {}, "127.0.0.1", 1}));
  auto m = stray->Recv(2000);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, BusType::kNotActive);

  // The clients stay on the primary; the brokers lose each other.
  auto edge = PeerOf(0, "edge-a/0");
  auto worker = PeerOf(0, "msg/1");
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});
  relay_to_a_->Cut();
  relay_to_b_->Cut();
  // Ten times the peer timeout: the backup hears nothing, but no client comes to it.
  for (int i = 0; i < 20; ++i) {  // heartbeats keep both alive on the primary
    edge->Recv(kHeartbeatMs / 2);
    worker->Recv(kHeartbeatMs / 2);
  }
  EXPECT_EQ(StateOf(1), "passive") << "the backup took over while clients had the primary";
  EXPECT_EQ(StateOf(0), "active");
  // The primary still serves.
  edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSend, 3)),
             TextBody("through the partition"));
  codec::RequestMeta req;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &req));
  worker->Send(BusType::kReply, codec::PackMeta(ReplyTo(req)), codec::OkBody());
  codec::ReplyMeta reply;
  ASSERT_TRUE(edge->Expect(BusType::kReply, &reply));

  // The rule's other half: silence *and* a client. One comes: the backup takes over.
  stray->Send(BusType::kHeartbeat, codec::PackMeta(codec::Heartbeat{}));
  m = stray->Recv(2000);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, BusType::kUnknownPeer);
  EXPECT_EQ(StateOf(1), "active");
}

// Both active after a partition: when it heals the backup yields (ForgetAll). What
// its workers held is answered UNAVAILABLE to its edges then, not left to their
// timeouts: the answers wait in an edge's batch (an edge that takes batches), and
// that batch must go before the edge is forgotten.
// And what waits in its queue for a worker (no directory worker here): answered at
// once, not left to the edge's timeout.
TEST_F(BrokerPairTest, TheBackupThatYieldsAnswersWhatItsWorkersHeld) {
  ASSERT_TRUE(WaitState(0, "active"));
  ASSERT_TRUE(WaitState(1, "passive"));
  relay_to_a_->Cut();
  relay_to_b_->Cut();
  std::this_thread::sleep_for(milliseconds(3 * kHeartbeatMs));  // each hears nothing
  // Clients come to the backup: it serves them (split brain).
  auto edge = PeerOf(1, "edge-a/0");
  auto worker = PeerOf(1, "msg/1");
  edge->features = codec::kFeatureBatch;
  worker->features = codec::kFeatureBatch;
  edge->Ready("edge", "a");
  worker->Ready("worker", "msg", {"msg"});
  ASSERT_EQ(StateOf(1), "active");
  edge->Send(BusType::kRequest, codec::PackMeta(Request(kMsg, codec::msg::kSync, 7)),
             TextBody("held"));
  codec::RequestMeta req;
  ASSERT_TRUE(worker->Expect(BusType::kRequest, &req));  // held, never answered
  constexpr uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);
  edge->Send(BusType::kRequest,
             codec::PackMeta(Request(kDirectory, codec::directory::kListUsers, 8)),
             TextBody("queued"));
  std::this_thread::sleep_for(milliseconds(kHeartbeatMs));  // in the broker's queue

  relay_to_a_->Heal();
  relay_to_b_->Heal();
  auto m = edge->Recv(2000);  // well before the queue's own timeout (3 s)
  ASSERT_TRUE(m.has_value()) << "the edge heard nothing";
  auto items = Items(*m);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 2u) << "the held and the queued request, answered together";
  std::set<uint64_t> conns;
  for (const bus::BusMessage& item : *items) {
    ASSERT_EQ(item.type, BusType::kReply)
        << "got type " << static_cast<int>(item.type) << " before the answers";
    codec::ReplyMeta reply;
    ASSERT_TRUE(codec::UnpackMeta(item.meta, &reply));
    conns.insert(reply.conn);
    EXPECT_EQ(CodeOf(item.body).first, static_cast<int>(codec::Code::kUnavailable));
  }
  EXPECT_EQ(conns, (std::set<uint64_t>{7, 8}));
  EXPECT_EQ(StateOf(1), "passive");
}

TEST_F(BrokerPairTest, WhenThePrimaryDiesTheBackupServesTheFirstPeerThatComes) {
  ASSERT_TRUE(WaitState(0, "active"));
  ASSERT_TRUE(WaitState(1, "passive"));
  // The primary's thread stops: it is silent (its peers would see the connection drop).
  stop_[0] = true;
  threads_[0].join();
  threads_[0] = std::thread([] {});
  std::this_thread::sleep_for(milliseconds(3 * kHeartbeatMs));
  EXPECT_EQ(StateOf(1), "passive") << "silence alone";
  auto edge = PeerOf(1, "edge-a/0");
  edge->keep_heartbeats = true;
  edge->beat = false;
  edge->Send(BusType::kReady, codec::PackMeta(codec::Ready{"edge", "a", {}, "127.0.0.1", 1}));
  codec::Heartbeat ack;
  ASSERT_TRUE(edge->Expect(BusType::kHeartbeat, &ack));
  EXPECT_EQ(ack.incarnation, brokers_[1]->incarnation());
  EXPECT_EQ(StateOf(1), "active");
}

}  // namespace
}  // namespace imbus::broker

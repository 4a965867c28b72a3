// Prometheus metrics end to end: a stack whose broker, edge and actor all serve
// /metrics (--metrics-listen 127.0.0.1:0), a small chat through it, then each
// process scraped over plain HTTP: the figures moved as the chat says they must
// (messages stored = MSG/SENDs acknowledged, connections = clients open), and every
// scrape passes `promtool check metrics`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "client/msg_api.h"
#include "client/tls.h"
#include "codec/codes.h"
#include "codec/commands.h"
#include "test/integration/metrics_scrape.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kClients = 4;
constexpr int kSendsEach = 5;

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A throwaway self-signed certificate: the edge also gets a TLS listener.
    char dir[] = "/tmp/imbus-metrics-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    tls_dir_ = dir;
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
        tls_dir_ + "/key.pem -out " + tls_dir_ + "/cert.pem >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    StackOptions options;
    const std::vector<std::string> flag = {"--metrics-listen", "127.0.0.1:0"};
    options.broker_args = flag;
    options.edge_args = flag;
    options.actor_args = flag;
    stack_ = std::make_unique<Stack>(options);
    stack_->EnableTls(tls_dir_ + "/cert.pem", tls_dir_ + "/key.pem");
    stack_->StartBroker();
    stack_->StartActor("auth,directory,presence,msg", 1);
    stack_->StartEdge();
    ASSERT_TRUE(WaitWorkers(*stack_, "msg", 1)) << stack_->Logs();
    broker_port_ = MetricsPort(stack_->broker());
    edge_port_ = MetricsPort(stack_->edge(0));
    actor_port_ = MetricsPort(stack_->actor(0));
    ASSERT_GT(broker_port_, 0) << stack_->Logs();
    ASSERT_GT(edge_port_, 0) << stack_->Logs();
    ASSERT_GT(actor_port_, 0) << stack_->Logs();
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
    if (!tls_dir_.empty()) std::system(("rm -rf '" + tls_dir_ + "'").c_str());
  }

  // Scrapes `port`, checks the text with promtool, parses it.
  static Scrape ScrapeChecked(int port, const char* who) {
    const auto text = HttpGetMetrics(port);
    EXPECT_TRUE(text.has_value()) << who << ": no 200 answer on /metrics";
    if (!text) return {};
    const std::string lint = PromtoolCheck(*text);
    EXPECT_EQ(lint, "") << who << ": promtool check metrics:\n" << lint << "\n" << *text;
    return ParseMetrics(*text);
  }

  // Scrapes the broker until `series` has `want` (its figures are a snapshot the
  // loop publishes every 250 ms), at most 5 s; the last scrape.
  Scrape BrokerWhen(const std::string& series, double want) {
    Scrape s;
    const auto deadline = std::chrono::steady_clock::now() + seconds(5);
    do {
      s = ScrapeChecked(broker_port_, "broker");
      if (Value(s, series) == want) break;
      std::this_thread::sleep_for(milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return s;
  }

  std::string tls_dir_;
  std::unique_ptr<Stack> stack_;
  int broker_port_ = 0;
  int edge_port_ = 0;
  int actor_port_ = 0;
};

TEST_F(MetricsTest, FiguresFollowAChat) {
  const Scrape edge0 = ScrapeChecked(edge_port_, "edge");
  EXPECT_EQ(Value(edge0, "imbus_edge_connections{transport=\"tcp\"}"), 0);
  const Scrape actor0 = ScrapeChecked(actor_port_, "actor");
  const double stored0 = Value(actor0, "imbus_msg_messages_stored_total");
  EXPECT_EQ(stored0, 0);

  // kClients users, logged in, each sending kSendsEach messages to the next.
  std::vector<client::Client> clients;
  std::vector<uint64_t> uids;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connected(*stack_));
    const std::string name = UniqueName("metrics");
    auto reg = clients.back().Register(name, "secret-pw");
    ASSERT_TRUE(reg.ok()) << reg.Describe();
    auto login = clients.back().Login(name, "secret-pw", "laptop");
    ASSERT_TRUE(login.ok()) << login.Describe();
    uids.push_back(reg.value);
  }
  int acked = 0;
  for (int round = 0; round < kSendsEach; ++round) {
    for (int i = 0; i < kClients; ++i) {
      auto sent = client::SendToUser(clients[i], uids[(i + 1) % kClients], client::NewCmid(),
                                     "hello " + std::to_string(round));
      if (sent.ok()) ++acked;
    }
  }
  ASSERT_EQ(acked, kClients * kSendsEach);
  // A resend of a stored message (same cmid) is acknowledged but not stored again.
  const std::string cmid = client::NewCmid();
  ASSERT_TRUE(client::SendToUser(clients[0], uids[1], cmid, "once").ok());
  ASSERT_TRUE(client::SendToUser(clients[0], uids[1], cmid, "once").ok());
  const int stored_new = acked + 1;
  const int sends_answered = acked + 2;

  // The actor: every acknowledged message stored once, all of them through batches.
  const Scrape actor = ScrapeChecked(actor_port_, "actor");
  EXPECT_EQ(Value(actor, "imbus_msg_messages_stored_total"), stored_new);
  EXPECT_EQ(Value(actor, "imbus_actor_requests_total{service=\"msg\"}"), sends_answered);
  EXPECT_EQ(Value(actor, "imbus_actor_batch_size_sum{service=\"msg\"}"), sends_answered);
  EXPECT_GE(Value(actor, "imbus_actor_batch_size_count{service=\"msg\"}"), 1);
  EXPECT_GE(Value(actor, "imbus_actor_requests_total{service=\"auth\"}"), 2 * kClients);
  // At least one statement per stored batch.
  EXPECT_GE(Value(actor, "imbus_actor_db_query_duration_seconds_count"),
            Value(actor, "imbus_actor_batch_size_count{service=\"msg\"}"));
  EXPECT_GT(Value(actor, "imbus_actor_db_query_duration_seconds_sum"), 0);
  EXPECT_EQ(Value(actor, "imbus_actor_db_deadlocks_total"), 0);

  // The edge: the clients' connections, their frames, and every answer by code.
  const Scrape edge = ScrapeChecked(edge_port_, "edge");
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tcp\"}"), kClients);
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tls\"}"), 0);
  EXPECT_EQ(Value(edge, "imbus_edge_connections_accepted_total{transport=\"tcp\"}"), kClients);
  EXPECT_EQ(Value(edge, "imbus_edge_responses_total{code=\"OK\",command=\"SEND\",service=\"msg\"}"),
            sends_answered);
  EXPECT_EQ(
      Value(edge, "imbus_edge_responses_total{code=\"OK\",command=\"LOGIN\",service=\"auth\"}"),
      kClients);
  const int requests = kClients * 2 + sends_answered;  // REGISTER, LOGIN, SENDs
  EXPECT_EQ(Value(edge, "imbus_edge_frames_received_total"), requests);
  EXPECT_EQ(Value(edge, "imbus_edge_forwarded_total"), requests);
  EXPECT_EQ(Value(edge, "imbus_edge_request_duration_seconds_count{service=\"msg\"}"),
            sends_answered);
  // Every request answered, plus a MESSAGE push per new message to its online recipient
  // (the sender's own other sessions: none).
  EXPECT_GE(Value(edge, "imbus_edge_pushes_total"), stored_new);
  EXPECT_GE(Value(edge, "imbus_edge_frames_sent_total"),
            requests + Value(edge, "imbus_edge_pushes_total"));
  EXPECT_GT(Value(edge, "imbus_edge_received_bytes_total"), 0);
  EXPECT_GT(Value(edge, "imbus_edge_sent_bytes_total"), 0);

  // The broker: sessions, workers, requests by service, dispatch latencies.
  Scrape broker = BrokerWhen("imbus_broker_sessions", kClients);
  EXPECT_EQ(Value(broker, "imbus_broker_sessions"), kClients);
  EXPECT_EQ(Value(broker, "imbus_broker_users_online"), kClients);
  EXPECT_EQ(Value(broker, "imbus_broker_workers{service=\"msg\"}"), 1);
  EXPECT_EQ(Value(broker, "imbus_broker_edges"), 1);
  EXPECT_EQ(Value(broker, "imbus_broker_requests_total{service=\"msg\"}"), sends_answered);
  EXPECT_EQ(Value(broker, "imbus_broker_dispatch_duration_seconds_count{service=\"msg\"}"),
            sends_answered);
  EXPECT_EQ(Value(broker, "imbus_broker_queue_depth{service=\"msg\"}"), 0);
  EXPECT_EQ(Value(broker, "imbus_broker_ha_state{state=\"standalone\"}"), 1);

  // Two clients leave: the gauges follow.
  clients.pop_back();
  clients.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + seconds(5);
  Scrape after;
  do {
    after = ScrapeChecked(edge_port_, "edge");
    if (Value(after, "imbus_edge_connections{transport=\"tcp\"}") == kClients - 2) break;
    std::this_thread::sleep_for(milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(Value(after, "imbus_edge_connections{transport=\"tcp\"}"), kClients - 2);
  broker = BrokerWhen("imbus_broker_sessions", kClients - 2);
  EXPECT_EQ(Value(broker, "imbus_broker_sessions"), kClients - 2);
}

TEST_F(MetricsTest, ConnectionsAreCountedByTransport) {
  client::Client plain = Connected(*stack_);
  client::TlsConfig config;
  config.ca_file = tls_dir_ + "/cert.pem";
  std::string error;
  auto ctx = client::TlsClientContext::Create(config, &error);
  ASSERT_TRUE(ctx) << error;
  std::vector<client::Client> tls(2);
  for (client::Client& c : tls) {
    c.set_tls(ctx, "127.0.0.1");
    ASSERT_TRUE(c.Connect("127.0.0.1", static_cast<uint16_t>(stack_->edge_tls_port()), &error))
        << error;
    ASSERT_TRUE(c.Ping().ok());
  }
  ASSERT_TRUE(plain.Ping().ok());
  Scrape edge = ScrapeChecked(edge_port_, "edge");
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tcp\"}"), 1);
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tls\"}"), 2);
  EXPECT_EQ(Value(edge, "imbus_edge_connections_accepted_total{transport=\"tls\"}"), 2);
  // A TLS client leaves: the tls gauge falls, the tcp one stays.
  tls.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + seconds(5);
  do {
    edge = ScrapeChecked(edge_port_, "edge");
    if (Value(edge, "imbus_edge_connections{transport=\"tls\"}") == 1) break;
    std::this_thread::sleep_for(milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tls\"}"), 1);
  EXPECT_EQ(Value(edge, "imbus_edge_connections{transport=\"tcp\"}"), 1);
}

TEST_F(MetricsTest, RefusalsAreCounted) {
  // A frame for an unknown command is answered UNSUPPORTED at the edge; a broken
  // stream (a bad magic) is cut.
  client::Client c = Connected(*stack_);
  const auto r = c.Call(codec::ToWire(codec::Service::kMsg), 77, "\x80");
  EXPECT_EQ(r.code, static_cast<int>(codec::Code::kUnsupported));
  const Scrape edge = ScrapeChecked(edge_port_, "edge");
  EXPECT_EQ(Value(edge,
                  "imbus_edge_responses_total{code=\"UNSUPPORTED\",command=\"unknown\","
                  "service=\"msg\"}"),
            1);
  EXPECT_EQ(Value(edge, "imbus_edge_forwarded_total"), 0);
}

}  // namespace
}  // namespace imbus::testing

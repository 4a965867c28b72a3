// TLS for clients against the real stack: an edge with a TLS listener beside its
// plain one. A TLS session end to end (register, login, a message pushed to a second
// TLS client), a plain client on the TLS port refused while the edge keeps serving,
// certificate checks (wrong CA, wrong server name: a clear error, exit 3 from the
// CLI), a handshake that never starts closed by the idle timeout, and the plain port
// working alongside.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "client/client.h"
#include "client/msg_api.h"
#include "client/tls.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "test/integration/stack.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kPassword[] = "password1";

// A throwaway self-signed certificate for 127.0.0.1/localhost (and one for another
// name, the "wrong CA"), made with the openssl command in a fresh temp dir.
class Certs {
 public:
  Certs() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/imbus-tls-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    Make("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    Make("other", "/CN=other.example", "subjectAltName=DNS:other.example");
  }
  ~Certs() { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Cert(const std::string& name) const { return dir_ + "/" + name + ".crt"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }

 private:
  void Make(const std::string& name, const std::string& subject, const std::string& san) {
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
        "-nodes -days 2 -subj '" +
        subject + "' -addext '" + san + "' -keyout '" + Key(name) + "' -out '" + Cert(name) +
        "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed: " + cmd);
  }
  std::string dir_;
};

class TlsStackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new Certs();
    StackOptions o;
    o.idle_timeout_s = 5;  // the never-finished handshake must be swept soon
    stack_ = new Stack(o);
    stack_->EnableTls(certs_->Cert("server"), certs_->Key("server"));
    stack_->StartBroker();
    stack_->StartActor("auth");
    stack_->StartActor("msg");
    stack_->StartEdge();
  }
  static void TearDownTestSuite() {
    delete stack_;
    delete certs_;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->Logs();
  }

  static std::shared_ptr<const client::TlsClientContext> Trust(const std::string& ca_file) {
    client::TlsConfig config;
    config.ca_file = ca_file;
    std::string error;
    auto ctx = client::TlsClientContext::Create(config, &error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
  }

  // A client connected over TLS (trusting the test CA) or nullopt-ish: `error` set.
  static bool ConnectTls(client::Client* c, const std::string& ca, const std::string& name,
                         std::string* error, const std::string& host = "127.0.0.1") {
    c->set_tls(Trust(ca), name);
    return c->Connect(host, static_cast<uint16_t>(stack_->edge_tls_port()), error);
  }

  static int RunCli(const std::string& args, std::string* output) {
    const std::string cmd = std::string(IMBUS_CLIENT_BIN) + " --timeout-ms 20000 " + args + " 2>&1";
    FILE* f = ::popen(cmd.c_str(), "r");
    if (f == nullptr) return -1;
    char buf[512];
    while (std::fgets(buf, sizeof(buf), f) != nullptr) *output += buf;
    const int status = ::pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static Certs* certs_;
  static Stack* stack_;
};

Certs* TlsStackTest::certs_ = nullptr;
Stack* TlsStackTest::stack_ = nullptr;

TEST_F(TlsStackTest, SessionEndToEndOverTls) {
  ASSERT_NE(stack_->edge_tls_port(), 0);
  client::Client alice(seconds(20)), bob(seconds(20));
  std::string error;
  ASSERT_TRUE(ConnectTls(&alice, certs_->Cert("server"), "", &error)) << error;
  ASSERT_TRUE(ConnectTls(&bob, certs_->Cert("server"), "localhost", &error)) << error;
  EXPECT_TRUE(alice.connection().tls());
  EXPECT_NE(alice.connection().TlsDescription().find("TLSv1."), std::string::npos)
      << alice.connection().TlsDescription();

  const std::string a = UniqueName("tlsa"), b = UniqueName("tlsb");
  auto ra = alice.Register(a, kPassword);
  ASSERT_TRUE(ra.ok()) << ra.Describe();
  auto rb = bob.Register(b, kPassword);
  ASSERT_TRUE(rb.ok()) << rb.Describe();
  ASSERT_TRUE(alice.Login(a, kPassword).ok());
  ASSERT_TRUE(bob.Login(b, kPassword).ok());
  ASSERT_TRUE(bob.Ping().ok());  // bob's edge session is live before the send

  const std::string text(3000, 'x');  // more than one small record's worth
  auto sent = client::SendToUser(alice, rb.value, client::NewCmid(), text + " hello over TLS");
  ASSERT_TRUE(sent.ok()) << sent.Describe();

  std::optional<client::Message> got;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    std::optional<client::Push> p = bob.connection().WaitPush(milliseconds(500));
    if (p) got = client::MessageFromPush(*p);
  }
  ASSERT_TRUE(got) << "no MSG push reached the second TLS client";
  EXPECT_EQ(got->from, ra.value);
  EXPECT_EQ(got->text, text + " hello over TLS");
}

TEST_F(TlsStackTest, PlainClientOnTlsPortIsRefusedAndEdgeKeepsServing) {
  const size_t from = stack_->edge(0).LogSize();
  client::Connection plain;
  std::string error;
  ASSERT_TRUE(plain.Connect("127.0.0.1", static_cast<uint16_t>(stack_->edge_tls_port()),
                            seconds(10), &error))
      << error;
  client::Response r = plain.Call(codec::ToWire(codec::Service::kSys), codec::sys::kPing,
                                  codec::EmptyBody(), seconds(20));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code, client::kCodeDisconnected) << r.Describe();
  EXPECT_EQ(plain.queued(), 0u) << "a frame came back from the TLS port";
  EXPECT_TRUE(stack_->edge(0).WaitForLog("TLS handshake failed", seconds(10), from));

  // Still serving, both ports.
  client::Client tls_client(seconds(20));
  ASSERT_TRUE(ConnectTls(&tls_client, certs_->Cert("server"), "", &error)) << error;
  EXPECT_TRUE(tls_client.Ping().ok());
  client::Client plain_client = Connected(*stack_, 0, seconds(20));
  auto pong = plain_client.Ping();
  EXPECT_TRUE(pong.ok()) << pong.Describe();
  EXPECT_FALSE(plain_client.connection().tls());
}

TEST_F(TlsStackTest, WrongCaOrWrongNameFailsVerification) {
  std::string error;
  client::Client wrong_ca(seconds(20));
  EXPECT_FALSE(ConnectTls(&wrong_ca, certs_->Cert("other"), "", &error));
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;

  error.clear();
  client::Client wrong_name(seconds(20));
  EXPECT_FALSE(ConnectTls(&wrong_name, certs_->Cert("server"), "other.example", &error));
  EXPECT_NE(error.find("hostname mismatch"), std::string::npos) << error;

  error.clear();
  client::Client wrong_ip(seconds(20));
  EXPECT_FALSE(ConnectTls(&wrong_ip, certs_->Cert("server"), "127.0.0.2", &error));
  EXPECT_NE(error.find("IP address mismatch"), std::string::npos) << error;
}

TEST_F(TlsStackTest, CliTlsFlagsAndExitCodes) {
  const std::string server = "--server 127.0.0.1:" + std::to_string(stack_->edge_tls_port());
  std::string out;
  EXPECT_EQ(RunCli(server + " --tls --ca-file " + certs_->Cert("server") + " ping", &out), 0)
      << out;
  EXPECT_NE(out.find("pong"), std::string::npos) << out;

  out.clear();
  EXPECT_EQ(RunCli(server + " --tls --ca-file " + certs_->Cert("other") + " ping", &out), 3) << out;
  EXPECT_NE(out.find("certificate verify failed"), std::string::npos) << out;

  out.clear();
  EXPECT_EQ(RunCli(server + " --tls --ca-file " + certs_->Cert("server") +
                       " --server-name other.example ping",
                   &out),
            3)
      << out;
  EXPECT_NE(out.find("hostname mismatch"), std::string::npos) << out;

  out.clear();
  EXPECT_EQ(RunCli(server + " --tls --ca-file /nonexistent/ca.pem ping", &out), 2) << out;
}

TEST_F(TlsStackTest, HandshakeThatNeverStartsIsClosedByIdleTimeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(stack_->edge_tls_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // Send nothing: the edge waits for a ClientHello that never comes, then sweeps it.
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, 60000);
  char c;
  const ssize_t n = rc > 0 ? ::recv(fd, &c, 1, 0) : -1;
  ::close(fd);
  EXPECT_EQ(rc, 1) << "the edge did not close the silent TLS connection";
  EXPECT_LE(n, 0);
  EXPECT_TRUE(stack_->edge(0).WaitForLog("idle for 5 s", seconds(10)));
}

}  // namespace
}  // namespace imbus::testing

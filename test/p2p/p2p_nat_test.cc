// Direct P2P chat across two NATs built from network namespaces (needs root, `ip
// netns` and iptables; skipped otherwise). Layout, all names unique per run (pid):
//
//   root ns: broker, actors, an edge on <P>.0.1 (bridge ib<pid>b)
//     ├── nat1 ns: <P>.0.11 outside, MASQUERADE, <P>.1.1 inside (bridge) ── c1, c3
//     └── nat2 ns: <P>.0.12 outside, MASQUERADE, <P>.2.1 inside ────────── c2
//
// c1 and c2 cannot reach each other's private addresses; they meet through both NATs
// by TCP simultaneous open from the ports they use toward the edge. nat1's FORWARD
// counter for packets to nat2 proves the chat went straight there, and the direct
// connection's far end is nat2's address, not the edge. c1 and c3 (same LAN) connect
// over their local addresses.
//
// Files (issue 19): a file sent with P2P FILE_OFFER/CHUNK/DONE crosses both NATs and
// arrives with its sha256; a direct transfer cut midway falls back to the stored
// upload, and the receiver downloads only the bytes its .part lacks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "client/file_api.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Runs a shell command; its exit status (0 = success).
int Sh(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

std::string ShOut(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  pclose(f);
  return out;
}

// The namespaces, veths and bridge of one run; everything removed on destruction
// (and leftovers of the same names removed before building).
class NatLab {
 public:
  NatLab() : tag_("ib" + std::to_string(getpid() % 100000)) {
    net_ = "10." + std::to_string(100 + getpid() % 100);
  }
  ~NatLab() { Cleanup(); }
  NatLab(const NatLab&) = delete;
  NatLab& operator=(const NatLab&) = delete;

  std::string ns(const std::string& n) const { return tag_ + n; }
  std::string ip(int subnet, int host) const {
    return net_ + "." + std::to_string(subnet) + "." + std::to_string(host);
  }

  void Cleanup() {
    for (const char* n : {"c1", "c2", "c3", "n1", "n2"}) Sh("ip netns del " + ns(n));
    // Deletes every copy of the accept rule (Build may have run twice).
    while (Sh("iptables -D FORWARD " + BridgeAccept()) == 0) {
    }
    Sh("ip link del " + tag_ + "b");
    Sh("ip link del " + tag_ + "v1");
    Sh("ip link del " + tag_ + "v2");
  }

  // Builds everything; false with *why on the first failing step.
  bool Build(std::string* why) {
    Cleanup();
    const std::string b = tag_ + "b";
    std::vector<std::string> steps = {
        "ip link add " + b + " type bridge", "ip addr add " + ip(0, 1) + "/24 dev " + b,
        "ip link set " + b + " up",
        // With br_netfilter loaded (dockerd loads it and sets the root FORWARD
        // policy to DROP), frames crossing this bridge between the NATs go through
        // the root namespace's FORWARD chain: let this lab's own bridge through.
        "iptables -I FORWARD 1 " + BridgeAccept()};
    for (int i : {1, 2}) {
      const std::string n = ns("n" + std::to_string(i));
      const std::string v = tag_ + "v" + std::to_string(i);
      const std::string lan = ip(i, 1);
      steps.insert(
          steps.end(),
          {
              "ip netns add " + n,
              "ip link add " + v + " type veth peer name out netns " + n,
              "ip link set " + v + " master " + b,
              "ip link set " + v + " up",
              "ip -n " + n + " addr add " + ip(0, 10 + i) + "/24 dev out",
              "ip -n " + n + " link set out up",
              "ip -n " + n + " link set lo up",
              "ip -n " + n + " link add lan type bridge",
              "ip -n " + n + " addr add " + lan + "/24 dev lan",
              "ip -n " + n + " link set lan up",
              "ip netns exec " + n + " sysctl -q -w net.ipv4.ip_forward=1",
              "ip netns exec " + n + " iptables -t nat -A POSTROUTING -o out -j MASQUERADE",
              // Like a home router: unsolicited SYNs from outside are dropped, not
              // answered with RST (a RST would kill the other side's half-open dial).
              "ip netns exec " + n + " iptables -A INPUT -i out -p tcp --syn -j DROP",
              // Counts what nat1 forwards straight to the other NAT (the chat bytes).
              "ip netns exec " + n + " iptables -A FORWARD -o out -d " + ip(0, 13 - i) + " -p tcp",
          });
    }
    // Clients: c1, c3 behind nat1, c2 behind nat2.
    for (auto [c, nat, host] : {std::tuple{"c1", 1, 2}, {"c2", 2, 2}, {"c3", 1, 3}}) {
      const std::string cn = ns(c);
      const std::string n = ns("n" + std::to_string(nat));
      steps.insert(steps.end(),
                   {
                       "ip netns add " + cn,
                       "ip -n " + n + " link add " + c + " type veth peer name eth0 netns " + cn,
                       "ip -n " + n + " link set " + c + " master lan",
                       "ip -n " + n + " link set " + c + " up",
                       "ip -n " + cn + " addr add " + ip(nat, host) + "/24 dev eth0",
                       "ip -n " + cn + " link set eth0 up",
                       "ip -n " + cn + " link set lo up",
                       "ip -n " + cn + " route add default via " + ip(nat, 1),
                   });
    }
    for (const std::string& s : steps) {
      if (Sh(s) != 0) {
        *why = "failed: " + s;
        return false;
      }
    }
    return true;
  }

  // Packets nat1 forwarded to nat2 (the counting rule above): the first number on
  // the rule's line of `iptables -L -v -x`; -1 when the rule is not found.
  long ForwardedToOtherNat() const {
    std::istringstream out(ShOut("ip netns exec " + ns("n1") + " iptables -L FORWARD -v -n -x"));
    const std::string dest = " " + ip(0, 12);
    for (std::string line; std::getline(out, line);) {
      if (line.find(dest) == std::string::npos) continue;
      long packets = -1;
      std::istringstream(line) >> packets;
      return packets;
    }
    return -1;
  }

 private:
  std::string BridgeAccept() const {
    return "-i " + tag_ + "b -o " + tag_ + "b -j ACCEPT -m comment --comment imbus-p2p-nat-test";
  }

  std::string tag_;
  std::string net_;
};

bool Available(std::string* why) {
  if (geteuid() != 0) {
    *why = "needs root";
    return false;
  }
  if (Sh("command -v iptables") != 0 || Sh("command -v ip") != 0) {
    *why = "needs `ip` (iproute2) and `iptables`";
    return false;
  }
  const std::string probe = "ibprobe" + std::to_string(getpid() % 100000);
  if (Sh("ip netns add " + probe) != 0) {
    *why = "`ip netns add` is not permitted here";
    return false;
  }
  const bool nat_ok = Sh("ip netns exec " + probe + " iptables -t nat -L") == 0;
  Sh("ip netns del " + probe);
  if (!nat_ok) *why = "iptables NAT does not work in a network namespace here";
  return nat_ok;
}

class P2pNatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!Available(&why)) GTEST_SKIP() << "NAT test skipped: " << why;
    lab_ = std::make_unique<NatLab>();
    ASSERT_TRUE(lab_->Build(&why)) << why;
    // Strangers dial each other here: the legacy mode in which PEER_ADDR answers
    // about non-friends too (issue 18; consent_test covers friends-only presence).
    file_dir_ = "/tmp/" + UniqueName("p2pstore");
    dirs_.push_back(file_dir_);
    stack_ = std::make_unique<Stack>(
        StackOptions{.actor_args = {"--immediate-friends", "--file-dir", file_dir_}});
    stack_->StartBroker();
    stack_->StartActor("auth,directory,presence,msg");
    ASSERT_TRUE(WaitWorkers(*stack_, "presence", 1));
    edge_ = Process::Start(IMBUS_EDGE_BIN,
                           {"--listen", lab_->ip(0, 1) + ":0", "--broker", stack_->bus_endpoint(),
                            "--name", "natedge", "--log-level", "debug"});
    auto line = edge_.WaitForLog("listening on", seconds(20));
    ASSERT_TRUE(line.has_value()) << edge_.Log();
    edge_port_ = PortFromLogLine(*line);
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs() << edge_.Log();
    if (edge_.pid() > 0) edge_.Kill();
    lab_.reset();
    for (const std::string& d : dirs_) Sh("rm -rf " + d);
  }

  uint64_t Register(const std::string& name) {
    client::Client c(milliseconds(5000));
    std::string error;
    EXPECT_TRUE(c.Connect(lab_->ip(0, 1), static_cast<uint16_t>(edge_port_), &error)) << error;
    auto r = c.Register(name, "password1");
    EXPECT_TRUE(r.ok()) << r.Describe();
    return r.ok() ? r.value : 0;
  }

  Process RunPeer(const std::string& ns, const std::string& user, uint64_t peer_uid,
                  const std::string& text) {
    std::vector<std::string> args = {
        "netns",  "exec",         lab_->ns(ns), IMBUS_P2P_PEER_BIN,
        "--host", lab_->ip(0, 1), "--port",     std::to_string(edge_port_),
        "--user", user,           "--text",     text};
    if (peer_uid != 0) {
      args.push_back("--peer-uid");
      args.push_back(std::to_string(peer_uid));
    }
    return Process::Start("/usr/sbin/ip", args);
  }

  // Runs a pair: `a_ns` waits, `b_ns` starts; both must chat directly. Returns logs.
  void Chat(const std::string& a_ns, const std::string& b_ns, std::string* a_log,
            std::string* b_log) {
    const std::string an = UniqueName("na");
    const std::string bn = UniqueName("nb");
    const uint64_t a_uid = Register(an);
    ASSERT_NE(Register(bn), 0u);
    Process a = RunPeer(a_ns, an, 0, "hi from a");
    ASSERT_TRUE(a.WaitForLog("ready uid", seconds(15)).has_value()) << a.Log();
    Process b = RunPeer(b_ns, bn, a_uid, "hi from b");
    const auto sa = a.Wait(seconds(40));
    const auto sb = b.Wait(seconds(40));
    *a_log = a.Log();
    *b_log = b.Log();
    EXPECT_TRUE(sa && WIFEXITED(*sa) && WEXITSTATUS(*sa) == 0) << "a:\n" << *a_log;
    EXPECT_TRUE(sb && WIFEXITED(*sb) && WEXITSTATUS(*sb) == 0) << "b:\n" << *b_log;
    EXPECT_NE(a_log->find("got hi from b"), std::string::npos) << *a_log;
    EXPECT_NE(b_log->find("got hi from a"), std::string::npos) << *b_log;
  }

  // Writes `size` pseudo-random bytes to a fresh file; its sha256 (hex) in *hex.
  std::string MakeFile(const std::string& name, size_t size, std::string* hex) {
    const std::string dir = "/tmp/" + UniqueName("p2pfile");
    Sh("mkdir -p " + dir + "/in " + dir + "/out");
    dirs_.push_back(dir);
    const std::string path = dir + "/in/" + name;
    std::string data(size, '\0');
    uint64_t x = 88172645463325252ull;
    for (char& ch : data) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      ch = static_cast<char>(x);
    }
    FILE* f = fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f != nullptr) {
      fwrite(data.data(), 1, data.size(), f);
      fclose(f);
    }
    std::string sha, error;
    uint64_t n = 0;
    EXPECT_TRUE(client::Sha256OfFile(path, &sha, &n, &error)) << error;
    *hex = client::HexOf(sha);
    return path;
  }

  // Runs a receiver (`a_ns`, into DIR/out) and a sender of `path` (`b_ns`) with
  // extra sender flags; returns both logs.
  void TransferFile(const std::string& a_ns, const std::string& b_ns, const std::string& path,
                    const std::vector<std::string>& sender_flags, std::string* a_log,
                    std::string* b_log) {
    const std::string an = UniqueName("fa");
    const std::string bn = UniqueName("fb");
    const uint64_t a_uid = Register(an);
    ASSERT_NE(Register(bn), 0u);
    const std::string out = path.substr(0, path.rfind("/in/")) + "/out";
    std::vector<std::string> common = {"--host", lab_->ip(0, 1), "--port",
                                       std::to_string(edge_port_)};
    auto wrap = [&](const std::string& ns) {
      return std::vector<std::string>{"netns", "exec", lab_->ns(ns), IMBUS_P2P_PEER_BIN};
    };
    const std::string launcher_a = "/usr/sbin/ip";
    const std::string launcher_b = "/usr/sbin/ip";
    std::vector<std::string> ra = wrap(a_ns);
    ra.insert(ra.end(), common.begin(), common.end());
    ra.insert(ra.end(), {"--user", an, "--recv-dir", out});
    Process a = Process::Start(launcher_a, ra);
    ASSERT_TRUE(a.WaitForLog("ready uid", seconds(15)).has_value()) << a.Log();
    std::vector<std::string> rb = wrap(b_ns);
    rb.insert(rb.end(), common.begin(), common.end());
    rb.insert(rb.end(), {"--user", bn, "--peer-uid", std::to_string(a_uid), "--send-file", path});
    rb.insert(rb.end(), sender_flags.begin(), sender_flags.end());
    Process b = Process::Start(launcher_b, rb);
    const auto sb = b.Wait(seconds(90));
    const auto sa = a.Wait(seconds(90));
    *a_log = a.Log();
    *b_log = b.Log();
    EXPECT_TRUE(sa && WIFEXITED(*sa) && WEXITSTATUS(*sa) == 0) << "receiver:\n" << *a_log;
    EXPECT_TRUE(sb && WIFEXITED(*sb) && WEXITSTATUS(*sb) == 0) << "sender:\n" << *b_log;
  }

  std::vector<std::string> dirs_;
  std::string file_dir_;
  std::unique_ptr<NatLab> lab_;
  std::unique_ptr<Stack> stack_;
  Process edge_;
  int edge_port_ = 0;
};

TEST_F(P2pNatTest, PrivateAddressesAreUnreachableButChatCrossesBothNats) {
  // No route from LAN 1 (through nat1) to LAN 2's private addresses.
  EXPECT_NE(Sh("ip netns exec " + lab_->ns("n1") + " ip route get " + lab_->ip(2, 2)), 0);
  EXPECT_EQ(Sh("ip netns exec " + lab_->ns("n1") + " ip route get " + lab_->ip(0, 12)), 0);
  std::string a_log, b_log;
  Chat("c1", "c2", &a_log, &b_log);
  // Each side's direct connection ends at the other NAT's public address, not the edge.
  EXPECT_NE(a_log.find("remote " + lab_->ip(0, 12) + ":"), std::string::npos) << a_log;
  EXPECT_NE(b_log.find("remote " + lab_->ip(0, 11) + ":"), std::string::npos) << b_log;
  EXPECT_GT(lab_->ForwardedToOtherNat(), 0)
      << "nat1 forwarded nothing straight to nat2:\n"
      << ShOut("ip netns exec " + lab_->ns("n1") + " iptables -L FORWARD -v -n -x");
}

TEST_F(P2pNatTest, SameLanClientsUseLocalAddresses) {
  std::string a_log, b_log;
  Chat("c1", "c3", &a_log, &b_log);
  EXPECT_NE(a_log.find("remote " + lab_->ip(1, 3) + ":"), std::string::npos) << a_log;
  EXPECT_NE(b_log.find("remote " + lab_->ip(1, 2) + ":"), std::string::npos) << b_log;
}

// IMBUS_P2P_FILE_BYTES=N: the size of the file the direct-transfer tests send (for a
// throughput figure; the MB/s is printed, never asserted).
size_t FileBytes(size_t fallback) {
  const char* v = std::getenv("IMBUS_P2P_FILE_BYTES");
  return v != nullptr ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

// "received ... ms T" of the receiver's log: MB/s of the transfer.
void PrintRate(const std::string& where, const std::string& log, size_t size) {
  const size_t at = log.find(" ms ", log.find("received "));
  if (at == std::string::npos) return;
  const double ms = std::strtod(log.c_str() + at + 4, nullptr);
  std::printf("P2P file %s: %zu bytes in %.0f ms = %.1f MB/s\n", where.c_str(), size, ms,
              ms > 0 ? static_cast<double>(size) / 1e6 / (ms / 1000) : 0.0);
}

TEST_F(P2pNatTest, FileCrossesBothNatsDirectlyWithItsSha256) {
  std::string hex;
  const size_t size = FileBytes(3 * 1024 * 1024 + 123);
  const std::string path = MakeFile("photo.bin", size, &hex);
  const long before = lab_->ForwardedToOtherNat();
  std::string a_log, b_log;
  TransferFile("c1", "c2", path, {}, &a_log, &b_log);
  EXPECT_NE(b_log.find("sent via direct bytes_direct " + std::to_string(size)), std::string::npos)
      << b_log;
  EXPECT_NE(a_log.find("sha256 " + hex + " size " + std::to_string(size)), std::string::npos)
      << a_log;
  PrintRate("across two NATs", a_log, size);
  EXPECT_EQ(a_log.find("resumed"), std::string::npos) << a_log;  // nothing stored
  // ~100 full-size segments at least went straight from nat1 to nat2 (the answers).
  EXPECT_GT(lab_->ForwardedToOtherNat() - before, 50);
}

TEST_F(P2pNatTest, CutDirectTransferFallsBackToStoredUploadAndReceiverFetchesTheRest) {
  // The stored path needs the file service and the MSG `file` extension.
  const size_t offset = stack_->StartActor("file");
  (void)offset;
  if (!WaitWorkers(*stack_, "file", 1, seconds(10))) {
    GTEST_SKIP() << "this build has no file service";
  }
  std::string hex;
  const size_t size = 2 * 1024 * 1024 + 7;
  const std::string path = MakeFile("report.bin", size, &hex);
  std::string a_log, b_log;
  TransferFile("c1", "c2", path, {"--cut-after", std::to_string(20 * 32768)}, &a_log, &b_log);
  EXPECT_NE(b_log.find("cut at "), std::string::npos) << b_log;
  EXPECT_NE(b_log.find("sent via relayed"), std::string::npos) << b_log;
  EXPECT_NE(a_log.find("broken at "), std::string::npos) << a_log;
  EXPECT_NE(a_log.find("(the broken transfer)"), std::string::npos) << a_log;
  // The receiver held the first bytes and fetched only the rest.
  const size_t at = a_log.find("resumed ");
  ASSERT_NE(at, std::string::npos) << a_log;
  unsigned long long resumed = 0, fetched = 0;
  ASSERT_EQ(std::sscanf(a_log.c_str() + at, "resumed %llu fetched %llu", &resumed, &fetched), 2)
      << a_log;
  EXPECT_GE(resumed, 20u * 32768u) << a_log;
  EXPECT_LT(resumed, size);
  EXPECT_EQ(resumed + fetched, size) << a_log;
  EXPECT_NE(a_log.find("sha256 " + hex + " size " + std::to_string(size)), std::string::npos)
      << a_log;
}

}  // namespace
}  // namespace imbus::testing

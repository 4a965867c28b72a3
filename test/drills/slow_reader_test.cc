// Drill 3: a user in a busy group who never reads. The edge's output buffer for it
// fills (--max-output-bytes 65536), the edge closes that connection, everyone else
// carries on, the edge's memory stays bounded, and after reconnecting the slow user
// gets every message it missed by SYNC.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <set>

#include "test/drills/drill.h"

namespace imbus::testing {
namespace {

long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A client whose kernel receive buffer is tiny (set before connect, so the window
// stays small): what it does not read backs up into the edge quickly.
client::Client TinyWindowClient(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int size = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return client::Client(client::Connection::FromFd(net::UniqueFd(fd)), seconds(10));
}

class SlowReaderDrill : public DrillTest {};

TEST_F(SlowReaderDrill, NonReaderIsClosedOthersCarryOnNothingIsLost) {
  options_.edge_args = {"--max-output-bytes", "65536"};
  StartStack();
  ChatLoadOptions o;
  o.text_bytes = 4000;  // ~4 KiB per push: the limit is some 16 pushes away
  load_ = std::make_unique<ChatLoad>(*stack_, config_, o);
  // The slow user is a member of the load's group, logged in, and never reads.
  const TestUser slow = RegisterUser(*stack_, "slow");
  actors::Db db = StackDb(*stack_, config_);
  db.Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, 'member')",
           {load_->gid(), slow.uid});
  client::Client sink = TinyWindowClient(stack_->edge_port(0));
  ASSERT_TRUE(sink.Login(slow.name, kPassword).ok());

  const pid_t edge_pid = stack_->edge(0).pid();
  const long rss_before = RssKib(edge_pid);
  const size_t edge_log = stack_->edge(0).LogSize();
  load_->Start();
  EXPECT_TRUE(stack_->edge(0).WaitForLog("slow reader", seconds(60), edge_log))
      << "the edge never closed the non-reader";
  const long growth_kib = RssKib(edge_pid) - rss_before;
  std::cerr << "edge RSS growth while its non-reader backed up: " << growth_kib << " KiB\n";
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps freed memory resident
  EXPECT_LT(growth_kib, 32 * 1024);
#endif
  // The closed connection ends cleanly (EOF after what was already sent).
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (!sink.connection().closed() && std::chrono::steady_clock::now() < deadline) {
    (void)sink.connection().NextFrame(milliseconds(200));
  }
  EXPECT_TRUE(sink.connection().closed());

  ExpectRecoveredAndNothingLost("a slow reader");
  // Nobody else was disconnected.
  EXPECT_EQ(load_->resumes(), 0);
  EXPECT_EQ(load_->relogins(), 0);

  // The slow user reconnects and catches up by SYNC: every acknowledged group
  // message is there, in seq order.
  std::set<uint64_t> group_seqs;
  const std::string group_conv = "g:" + std::to_string(load_->gid());
  for (const Acked& a : load_->acked()) {
    if (a.conv == group_conv) group_seqs.insert(a.seq);
  }
  ASSERT_FALSE(group_seqs.empty());
  client::Client again = LoggedIn(*stack_, slow);
  std::set<uint64_t> synced;
  for (int round = 0; round < 1000; ++round) {
    auto s = client::Sync(again, 500);
    ASSERT_TRUE(s.ok()) << s.Describe();
    for (const client::Message& m : s.value.messages) {
      if (m.conv == group_conv) {
        EXPECT_TRUE(synced.insert(m.seq).second) << m.seq;
      }
    }
    if (!s.value.messages.empty()) {
      const client::Message& last = s.value.messages.back();
      ASSERT_TRUE(client::Ack(again, last.conv, last.seq).ok());
    }
    if (!s.value.more) break;
  }
  for (uint64_t seq : group_seqs) EXPECT_EQ(synced.count(seq), 1u) << "SYNC lost seq " << seq;
  std::cerr << "the slow user synced " << synced.size() << " group messages\n";
}

}  // namespace
}  // namespace imbus::testing

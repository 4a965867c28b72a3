#include "test/integration/chat_load.h"

#include <algorithm>
#include <map>
#include <set>

namespace imbus::testing {

namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr milliseconds kBackoff{100};
}  // namespace

ChatLoad::ChatLoad(Stack& stack, const DbConfig& db, ChatLoadOptions options)
    : stack_(stack), options_(std::move(options)), port_(stack.edge_port(0)) {
  std::vector<uint64_t> uids;
  for (int i = 0; i < options_.users; ++i) {
    users_.push_back(RegisterUser(stack_, options_.cmid_prefix));
    uids.push_back(users_.back().uid);
  }
  actors::Db d = StackDb(stack_, db);
  gid_ = CreateGroupInDb(d, uids);
}

ChatLoad::~ChatLoad() { Stop(); }

void ChatLoad::Start() {
  for (size_t i = 0; i < users_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

void ChatLoad::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool ChatLoad::WaitProgress(size_t n, milliseconds timeout) {
  const size_t target = acked_count_.load() + n;
  const auto deadline = Clock::now() + timeout;
  while (acked_count_.load() < target) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

std::vector<Acked> ChatLoad::acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

bool ChatLoad::Reconnect(client::Client& c, const TestUser& me, std::string* token,
                         Clock::time_point deadline) {
  while (!stop_.load() && Clock::now() < deadline) {
    std::string error;
    if (c.Connect("127.0.0.1", static_cast<uint16_t>(port_.load()), &error)) {
      if (!token->empty()) {
        if (c.Resume(*token).ok()) {
          ++resumes_;
          return true;
        }
      } else {
        auto r = c.Login(me.name, kPassword);
        if (r.ok()) {
          if (!token->empty()) ++relogins_;
          *token = r.value.token;
          return true;
        }
      }
      // RESUME refused or timed out (a fault still in progress): next round.
    }
    std::this_thread::sleep_for(kBackoff);
  }
  return false;
}

void ChatLoad::Run(size_t i) {
  const TestUser& me = users_[i];
  client::Client c(options_.call_timeout);
  std::string token;
  if (!Reconnect(c, me, &token, Clock::now() + options_.retry_for)) {
    if (!stop_.load()) ADD_FAILURE() << me.name << " never logged in";
    return;
  }
  const std::string padding(options_.text_bytes, '.');
  for (int k = 0; !stop_.load(); ++k) {
    const std::string cmid = options_.cmid_prefix + std::to_string(i) + "-" + std::to_string(k);
    // Alternate the group and a direct conversation with the next user.
    const bool group = k % 2 == 0;
    const uint64_t to = group ? gid_ : users_[(i + 1) % users_.size()].uid;
    const auto deadline = Clock::now() + options_.retry_for;
    for (;;) {
      auto r = group ? client::SendToGroup(c, to, cmid, cmid + padding)
                     : client::SendToUser(c, to, cmid, cmid + padding);
      if (r.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        acked_.push_back({me.uid, cmid, r.value.conv, r.value.seq});
        acked_count_ = acked_.size();
        break;
      }
      ++failures_;
      if (stop_.load()) return;  // an unacknowledged message promises nothing
      if (Clock::now() > deadline) {
        ADD_FAILURE() << cmid << " never acknowledged: " << r.Describe();
        return;
      }
      std::this_thread::sleep_for(kBackoff);
      if (r.code == client::kCodeDisconnected || c.connection().closed()) {
        (void)Reconnect(c, me, &token, deadline);  // if not, the next try fails and says why
      } else if (r.code == static_cast<int>(codec::Code::kUnauthenticated)) {
        token.clear();  // the session is gone: log in again
        c.connection().Close();
        ++relogins_;
        (void)Reconnect(c, me, &token, deadline);
      }
    }
    // Pushes from the others pile up in the client; a real client would show them.
    while (c.connection().PollPushes()) {
    }
  }
}

void ExpectStoredExactlyOnce(const Stack& stack, const DbConfig& config,
                             const std::vector<Acked>& acked) {
  actors::Db db = StackDb(stack, config);
  for (const Acked& a : acked) {
    actors::DbResult r = db.Query("SELECT conv, seq FROM messages WHERE sender = ? AND cmid = ?",
                                  {a.sender, std::string_view(a.cmid)});
    ASSERT_EQ(r.rows.size(), 1u) << a.cmid;
    EXPECT_EQ(*r.rows[0].Str(0), a.conv) << a.cmid;
    EXPECT_EQ(*r.rows[0].Uint(1), a.seq) << a.cmid;
  }
  // Gap-free: in every conversation the seqs are exactly 1..MAX(seq).
  actors::DbResult r =
      db.Query("SELECT conv, COUNT(seq), MIN(seq), MAX(seq) FROM messages GROUP BY conv");
  for (const actors::DbRow& row : r.rows) {
    EXPECT_EQ(row.Uint(2), 1u) << *row.Str(0);
    EXPECT_EQ(row.Uint(3), row.Uint(1)) << *row.Str(0);
  }
}

void ExpectRecipientsSeeAll(Stack& stack, const std::vector<TestUser>& users,
                            const std::vector<Acked>& acked) {
  std::map<std::string, std::map<uint64_t, const Acked*>> by_conv;
  for (const Acked& a : acked) {
    const Acked*& slot = by_conv[a.conv][a.seq];
    EXPECT_EQ(slot, nullptr) << a.conv << " seq " << a.seq << " acknowledged twice";
    slot = &a;
  }
  std::map<uint64_t, const TestUser*> by_uid;
  for (const TestUser& u : users) by_uid[u.uid] = &u;
  // One reader per conversation: a member that did not send its first message.
  std::map<uint64_t, std::vector<std::string>> reads;
  for (const auto& [conv, msgs] : by_conv) {
    const uint64_t sender = msgs.begin()->second->sender;
    for (const TestUser& u : users) {
      const std::string id = ":" + std::to_string(u.uid);  // "d:<lo>:<hi>"
      const bool member =
          conv[0] == 'g' || conv.find(id + ":") != std::string::npos ||
          conv.compare(conv.size() - std::min(conv.size(), id.size()), std::string::npos, id) == 0;
      if (member && u.uid != sender) {
        reads[u.uid].push_back(conv);
        break;
      }
    }
  }
  for (const auto& [uid, convs] : reads) {
    client::Client c = LoggedIn(stack, *by_uid[uid]);
    for (const std::string& conv : convs) {
      std::set<uint64_t> seen;
      uint64_t before = 0;
      for (;;) {
        auto h = client::History(c, conv, before, 100);
        ASSERT_TRUE(h.ok()) << conv << ": " << h.Describe();
        if (h.value.empty()) break;
        for (const client::Message& m : h.value) {
          EXPECT_TRUE(seen.insert(m.seq).second) << conv << " seq " << m.seq << " twice";
          auto it = by_conv[conv].find(m.seq);
          if (it != by_conv[conv].end()) {
            EXPECT_EQ(m.cmid, it->second->cmid) << conv;
          }
        }
        before = h.value.back().seq;
      }
      for (const auto& [seq, a] : by_conv[conv]) {
        EXPECT_EQ(seen.count(seq), 1u) << conv << " lost acknowledged " << a->cmid;
      }
      // Gap-free: 1..N (N may exceed the acks: sends whose ack the client never saw).
      if (!seen.empty()) {
        EXPECT_EQ(*seen.begin(), 1u) << conv;
        EXPECT_EQ(*seen.rbegin(), seen.size()) << conv << " has gaps";
      }
    }
  }
}

bool ServesAgain(int port, milliseconds timeout, std::string* why) {
  const auto deadline = Clock::now() + timeout;
  const auto attempt = [&](std::string* error) -> bool {
    client::Client a(milliseconds(5000)), b(milliseconds(5000));
    std::string e;
    if (!a.Connect("127.0.0.1", static_cast<uint16_t>(port), &e) ||
        !b.Connect("127.0.0.1", static_cast<uint16_t>(port), &e)) {
      *error = "connect: " + e;
      return false;
    }
    const std::string na = UniqueName("sa"), nb = UniqueName("sb");
    auto ra = a.Register(na, kPassword);
    auto rb = b.Register(nb, kPassword);
    if (!ra.ok() || !rb.ok()) {
      *error = "register: " + ra.Describe() + " / " + rb.Describe();
      return false;
    }
    auto la = a.Login(na, kPassword);
    auto lb = b.Login(nb, kPassword);
    if (!la.ok() || !lb.ok()) {
      *error = "login: " + la.Describe() + " / " + lb.Describe();
      return false;
    }
    auto s = client::SendToUser(a, rb.value, client::NewCmid(), "hello again");
    if (!s.ok()) {
      *error = "send: " + s.Describe();
      return false;
    }
    auto m = WaitMessage(b, milliseconds(5000));
    if (!m || m->seq != s.value.seq) {
      *error = "push not received";
      return false;
    }
    return true;
  };
  for (;;) {
    if (attempt(why)) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(200));
  }
}

}  // namespace imbus::testing

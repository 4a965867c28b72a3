// Hostile strings in every string field of every client command, against the real
// stack (broker, edge, one actor with auth, directory, presence and msg, MariaDB):
// invalid UTF-8, non-ASCII, NUL bytes, spaces around, empty, at and just over each
// field's limit, and a string where an int belongs or as an unknown key. No answer is
// INTERNAL (only a real server fault may be), none breaks the connection, every str
// the server sends back is UTF-8, and no process logs an error.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "codec/body.h"
#include "client/directory_api.h"
#include "codec/commands.h"
#include "codec/utf8.h"
#include "test/integration/stack_util.h"

namespace imbus::testing {
namespace {

using codec::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kPassword[] = "password1";
constexpr uint16_t kSys = codec::ToWire(codec::Service::kSys);
constexpr uint16_t kAuth = codec::ToWire(codec::Service::kAuth);
constexpr uint16_t kDirectory = codec::ToWire(codec::Service::kDirectory);
constexpr uint16_t kPresence = codec::ToWire(codec::Service::kPresence);
constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

std::string Times(std::string_view unit, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += unit;
  return s;
}

// The strings every field gets; `limit` (bytes, 0: none documented) adds values at and
// just over it, in ASCII and in 2- and 4-byte characters.
std::vector<std::string> HostileStrings(size_t limit) {
  std::vector<std::string> v = {
      "",
      " ",
      " padded ",
      "\t\r\n",
      std::string("\0", 1),
      std::string("a\0b", 3),
      "\xff",
      "\xc3\x28",          // 2-byte lead, bad continuation
      "\xe2\x82",          // truncated
      "\xed\xa0\x80",      // a surrogate
      "\xc0\xaf",          // overlong '/'
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "ok\xffok",
      "Zo\xc3\xab",                // Zoë
      "\xe6\x97\xa5\xe6\x9c\xac",  // 日本
      "\xf0\x9f\x98\x80",          // 😀, 4 bytes (utf8mb4 only)
      " \xf0\x9f\x98\x80 ",
      Times("x", 60000),
  };
  if (limit > 0) {
    v.push_back(Times("x", limit));
    v.push_back(Times("x", limit + 1));
    v.push_back(Times("\xc3\xa9", limit / 2));  // é
    v.push_back(Times("\xc3\xa9", limit / 2) + "x");
    v.push_back(Times("\xf0\x9f\x98\x80", limit / 4));  // 😀
    v.push_back(Times("\xf0\x9f\x98\x80", limit / 4) + "\xf0\x9f\x98\x80");
  }
  return v;
}

// True when every str in `o` (keys included) is UTF-8; *where says which is not.
bool AllUtf8(const msgpack::object& o, std::string* where) {
  switch (o.type) {
    case msgpack::type::STR:
      if (codec::IsValidUtf8(std::string_view(o.via.str.ptr, o.via.str.size))) return true;
      *where = "str of " + std::to_string(o.via.str.size) + " bytes";
      return false;
    case msgpack::type::ARRAY:
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (!AllUtf8(o.via.array.ptr[i], where)) return false;
      }
      return true;
    case msgpack::type::MAP:
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (!AllUtf8(o.via.map.ptr[i].key, where) || !AllUtf8(o.via.map.ptr[i].val, where)) {
          return false;
        }
      }
      return true;
    default:
      return true;
  }
}

using Value = std::variant<uint64_t, std::string>;
using Fields = std::map<std::string, Value>;

std::string Encode(const Fields& fields) {
  codec::MapWriter w(static_cast<uint32_t>(fields.size()));
  for (const auto& [key, value] : fields) {
    w.Key(key);
    if (const auto* u = std::get_if<uint64_t>(&value)) {
      w.Uint(*u);
    } else {
      w.Str(std::get<std::string>(value));
    }
  }
  return w.Finish();
}

// Where a case runs: on the logged-in main connection, or on a fresh connection
// (AUTH and SYS: a LOGIN or RESUME there must not touch the main one).
enum class Where { kMain, kFresh, kFreshLoggedIn };

struct Command {
  uint16_t service;
  uint16_t command;
  Where where;
  Fields base;                            // a valid request
  std::map<std::string, size_t> strings;  // string fields and their limits (0: none)
  std::vector<std::string> ints;          // int fields: a string there is BAD_REQUEST
};

struct Case {
  const Command* command;
  std::string field;  // "" : the hostile string is an unknown key
  std::string value;
  std::string Describe() const {
    const codec::CommandInfo* info = codec::FindCommand(command->service, command->command);
    std::ostringstream out;
    out << (info ? info->name : "?") << " " << (field.empty() ? "<unknown key>" : field) << " = ";
    const size_t shown = std::min<size_t>(value.size(), 12);
    for (size_t i = 0; i < shown; ++i) {
      out << "\\x"
          << "0123456789abcdef"[(value[i] >> 4) & 0xf] << "0123456789abcdef"[value[i] & 0xf];
    }
    out << " (" << value.size() << " bytes)";
    return out.str();
  }
};

class HostileStringsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No rate limits and no login backoff (per address or account): hundreds of
    // requests and failed logins must all reach the services.
    stack_ = std::make_unique<Stack>(StackOptions{
        .broker_args = {"--user-rate", "0", "--user-send-rate", "0"},
        .edge_args = {"--conn-rate", "0", "--conn-send-rate", "0", "--login-backoff-ms", "0"},
        .actor_args = {"--account-backoff-ms", "0"}});
    stack_->StartBroker();
    stack_->StartEdge();
    stack_->StartActor("auth,directory,presence,msg");
    for (const char* s : {"auth", "directory", "presence", "msg"}) {
      ASSERT_TRUE(WaitWorkers(*stack_, s, 1)) << s << "\n" << stack_->Logs();
    }
    main_ = std::make_unique<client::Client>(Connected(*stack_));
    main_name_ = UniqueName("hostile_main");
    auto reg = main_->Register(main_name_, kPassword);
    ASSERT_TRUE(reg.ok()) << reg.Describe();
    main_uid_ = reg.value;
    ASSERT_TRUE(main_->Login(main_name_, kPassword, "main").ok());

    client::Client other = Connected(*stack_);
    other_name_ = UniqueName("hostile_peer");
    auto reg2 = other.Register(other_name_, kPassword);
    ASSERT_TRUE(reg2.ok()) << reg2.Describe();
    other_uid_ = reg2.value;
    auto login = other.Login(other_name_, kPassword, "resume_dev");
    ASSERT_TRUE(login.ok()) << login.Describe();
    token_ = login.value.token;
    // Friends, so that PRESENCE answers about each other (issue 18).
    auto asked = client::RequestFriend(*main_, other_uid_);
    ASSERT_TRUE(asked.ok()) << asked.Describe();
    auto accepted = client::AcceptFriend(other, main_uid_);
    ASSERT_TRUE(accepted.ok()) << accepted.Describe();

    codec::MapWriter g(1);
    g.Key("name").Str("hostile group");
    client::Response group = main_->Call(kDirectory, codec::directory::kCreateGroup, g.Finish());
    ASSERT_TRUE(group.ok()) << group.Describe();
    gid_ = group.body.GetUint("gid").value_or(0);
    codec::MapWriter s(3);
    s.Key("to").Uint(other_uid_).Key("cmid").Str("first").Key("text").Str("hello");
    client::Response sent = main_->Call(kMsg, codec::msg::kSend, s.Finish());
    ASSERT_TRUE(sent.ok()) << sent.Describe();
    conv_ = sent.body.GetString("conv").value_or("");
    BuildCommands();
  }
  void TearDown() override {
    if (HasFailure() && stack_) std::cerr << stack_->Logs();
  }

  void BuildCommands() {
    const std::string conv = conv_;
    commands_ = {
        {kSys, codec::sys::kPing, Where::kFresh, {}, {}, {}},
        {kSys, codec::sys::kRoute, Where::kFresh, {}, {}, {}},
        {kSys,
         codec::sys::kHello,
         Where::kFresh,
         {{"client", "t"}},
         {{"client", 0}, {"version", 0}},
         {}},
        {kAuth,
         codec::auth::kRegister,
         Where::kFresh,
         {{"name", "x"}, {"password", kPassword}},
         {{"name", 32}, {"password", 128}},
         {}},
        {kAuth,
         codec::auth::kLogin,
         Where::kFresh,
         {{"name", other_name_},
          {"password", kPassword},
          {"device", "login_dev"},
          {"p2p_port", uint64_t{40000}},
          {"local_host", "192.168.1.20"}},
         {{"name", 32}, {"password", 128}, {"device", 64}, {"local_host", 64}},
         {"uid", "p2p_port"}},
        {kAuth,
         codec::auth::kResume,
         Where::kFresh,
         {{"token", token_}, {"p2p_port", uint64_t{40000}}},
         {{"token", 0}, {"device", 64}, {"local_host", 64}},
         {"p2p_port"}},
        {kAuth, codec::auth::kLogout, Where::kFreshLoggedIn, {}, {}, {}},
        {kAuth,
         codec::auth::kDeleteAccount,
         Where::kFresh,
         {{"uid", other_uid_}, {"password", "wrong password"}},
         {{"password", 128}},
         {"uid"}},
        {kDirectory, codec::directory::kListUsers, Where::kMain, {}, {}, {"page", "size"}},
        {kDirectory,
         codec::directory::kGetUser,
         Where::kMain,
         {{"name", other_name_}},
         {{"name", 32}},
         {"uid"}},
        {kDirectory, codec::directory::kAddFriend, Where::kMain, {}, {}, {"uid"}},
        {kDirectory, codec::directory::kRemoveFriend, Where::kMain, {}, {}, {"uid"}},
        {kDirectory, codec::directory::kListFriends, Where::kMain, {}, {}, {}},
        {kDirectory,
         codec::directory::kCreateGroup,
         Where::kMain,
         {{"name", "g"}, {"desc", "d"}},
         {{"name", 64}, {"desc", 512}},
         {}},
        {kDirectory, codec::directory::kJoinGroup, Where::kMain, {}, {}, {"gid"}},
        {kDirectory, codec::directory::kLeaveGroup, Where::kMain, {}, {}, {"gid"}},
        {kDirectory, codec::directory::kListGroups, Where::kMain, {}, {}, {}},
        {kDirectory, codec::directory::kGroupMembers, Where::kMain, {{"gid", gid_}}, {}, {"gid"}},
        {kPresence, codec::presence::kIsOnline, Where::kMain, {{"uid", other_uid_}}, {}, {"uid"}},
        {kPresence, codec::presence::kPeerAddr, Where::kMain, {{"uid", other_uid_}}, {}, {"uid"}},
        {kMsg,
         codec::msg::kSend,
         Where::kMain,
         {{"to", other_uid_}, {"cmid", "c"}, {"text", "hi"}},
         {{"cmid", 64}, {"text", 8192}},
         {"to", "gid"}},
        {kMsg,
         codec::msg::kAck,
         Where::kMain,
         {{"conv", conv}, {"seq", uint64_t{0}}},
         {{"conv", 48}},
         {"seq"}},
        {kMsg, codec::msg::kSync, Where::kMain, {}, {}, {"limit"}},
        {kMsg,
         codec::msg::kHistory,
         Where::kMain,
         {{"conv", conv}},
         {{"conv", 48}},
         {"before", "limit"}},
        {kMsg, codec::msg::kConversations, Where::kMain, {}, {}, {}},
    };
  }

  std::vector<Case> AllCases() const {
    std::vector<Case> out;
    for (const Command& cmd : commands_) {
      for (const auto& [field, limit] : cmd.strings) {
        for (std::string& v : HostileStrings(limit)) out.push_back({&cmd, field, std::move(v)});
      }
      for (const std::string& field : cmd.ints) {
        for (std::string& v : HostileStrings(0)) out.push_back({&cmd, field, std::move(v)});
      }
      for (std::string& v : HostileStrings(0)) {
        if (!v.empty() && v.size() < 100) out.push_back({&cmd, "", std::move(v)});
      }
    }
    return out;
  }

  // Checks one answer (and any pushes on `conn`): no INTERNAL nor other failure of
  // the server, the connection open, every str UTF-8.
  void ExpectSound(const Case& c, const client::Response& r, client::Connection& conn) {
    static const std::set<int> kAllowed = {static_cast<int>(Code::kOk),
                                           static_cast<int>(Code::kBadRequest),
                                           static_cast<int>(Code::kUnauthenticated),
                                           static_cast<int>(Code::kForbidden),
                                           static_cast<int>(Code::kNotFound),
                                           static_cast<int>(Code::kConflict),
                                           static_cast<int>(Code::kTooLarge)};
    EXPECT_TRUE(kAllowed.count(r.code)) << c.Describe() << ": " << r.Describe();
    EXPECT_FALSE(conn.closed()) << c.Describe() << ": " << conn.close_reason();
    std::string where;
    if (r.code >= 0) {
      EXPECT_TRUE(AllUtf8(r.body.root(), &where)) << c.Describe() << ": response " << where;
    }
    while (std::optional<client::Push> p = conn.PollPushes()) {
      EXPECT_FALSE(p->is_error()) << c.Describe();
      EXPECT_TRUE(AllUtf8(p->body.root(), &where)) << c.Describe() << ": push " << where;
    }
  }

  void Run(const Case& c) {
    Fields fields = c.command->base;
    if (c.field.empty()) {
      fields[c.value] = std::string("v");
    } else {
      fields[c.field] = c.value;
    }
    // Unique where a success stores something keyed by it.
    const uint16_t s = c.command->service, cmd = c.command->command;
    if (s == kAuth && cmd == codec::auth::kRegister && c.field != "name") {
      fields["name"] = UniqueName("hs");
    }
    if (s == kMsg && cmd == codec::msg::kSend && c.field != "cmid") {
      fields["cmid"] = "cmid" + std::to_string(++cmid_);
    }
    const std::string body = Encode(fields);
    if (c.command->where == Where::kMain) {
      client::Response r = main_->Call(s, cmd, body);
      ExpectSound(c, r, main_->connection());
      return;
    }
    client::Client fresh = Connected(*stack_);
    if (c.command->where == Where::kFreshLoggedIn) {
      ASSERT_TRUE(fresh.Login(other_name_, kPassword, "logout_dev").ok());
    }
    client::Response r = fresh.Call(s, cmd, body);
    ExpectSound(c, r, fresh.connection());
    // A session's local_host reaches other users in PRESENCE/PEER_ADDR: still UTF-8.
    if (s == kAuth && r.ok() && (cmd == codec::auth::kLogin || cmd == codec::auth::kResume)) {
      codec::MapWriter w(1);
      w.Key("uid").Uint(other_uid_);
      const Case peer{c.command, c.field, c.value};
      ExpectSound(peer, main_->Call(kPresence, codec::presence::kPeerAddr, w.Finish()),
                  main_->connection());
      std::this_thread::sleep_for(milliseconds(20));  // the P2P_INCOMING push
      while (std::optional<client::Push> p = fresh.connection().PollPushes()) {
        std::string where;
        EXPECT_TRUE(AllUtf8(p->body.root(), &where)) << c.Describe() << ": push " << where;
      }
    }
  }

  // Lines at level error or critical (the second word of spdlog's pattern).
  static std::vector<std::string> ErrorLines(const std::string& log) {
    std::vector<std::string> out;
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string ts, level;
      words >> ts >> level;
      if (level == "error" || level == "critical") out.push_back(line);
    }
    return out;
  }
  void ExpectNoErrorLogs() {
    std::vector<std::string> lines;
    for (Process* p : {&stack_->broker(), &stack_->edge(0), &stack_->actor(0)}) {
      for (std::string& l : ErrorLines(p->Log())) lines.push_back(std::move(l));
    }
    EXPECT_TRUE(lines.empty()) << lines.size() << " error lines, first: " << lines.front();
  }

  std::unique_ptr<Stack> stack_;
  std::unique_ptr<client::Client> main_;
  std::string main_name_, other_name_, token_, conv_;
  uint64_t main_uid_ = 0, other_uid_ = 0, gid_ = 0;
  int cmid_ = 0;
  std::vector<Command> commands_;
};

TEST_F(HostileStringsTest, EveryStringFieldOfEveryCommandGetsAProtocolAnswer) {
  size_t run = 0;
  for (const Case& c : AllCases()) {
    Run(c);
    ++run;
    if (HasFailure()) break;  // one case at a time is enough to read
  }
  EXPECT_GT(run, 600u);
  // Everyone is still served, and no process logged an error on the way.
  EXPECT_TRUE(main_->Ping().ok());
  EXPECT_TRUE(stack_->actor(0).Running());
  ExpectNoErrorLogs();
}

}  // namespace
}  // namespace imbus::testing

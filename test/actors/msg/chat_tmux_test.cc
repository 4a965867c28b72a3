// `imbus chat` in a real terminal (tmux): a message that arrives while the user is
// typing is printed above the line being typed, and the line (prompt, text, cursor)
// is intact afterwards: Enter sends exactly what was typed. Up recalls it from the
// history. Also `imbus --user NAME chat` (the session option before the command).
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <sstream>

#include "codec/commands.h"
#include "test/actors/msg/msg_test_util.h"

namespace imbus::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

class Tmux {
 public:
  Tmux() : socket_("imbus-chat-" + std::to_string(::getpid())) {}
  ~Tmux() { Run(Cmd("kill-server") + " 2>/dev/null"); }
  static bool Available() { return std::system("command -v tmux >/dev/null 2>&1") == 0; }
  std::string Cmd(const std::string& args) const { return "tmux -L " + socket_ + " " + args; }
  void Start(const std::string& command) {
    Run(Cmd("new-session -d -s chat -x 120 -y 30 '" + command + "'"));
  }
  void Keys(const std::string& literal) { Run(Cmd("send-keys -t chat -l '" + literal + "'")); }
  void Key(const std::string& key) { Run(Cmd("send-keys -t chat " + key)); }
  // The visible lines, trailing blank ones dropped.
  std::vector<std::string> Screen() const {
    std::istringstream in(Run(Cmd("capture-pane -p -t chat")));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) {
      while (!l.empty() && l.back() == ' ') l.pop_back();
      lines.push_back(l);
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
  }
  std::string Text() const {
    std::string all;
    for (const std::string& l : Screen()) all += l + "\n";
    return all;
  }
  bool WaitFor(const std::string& needle, milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Text().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }
  // The last visible line once it equals `want`.
  bool WaitLastLine(const std::string& want, milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<std::string> s = Screen();
      if (!s.empty() && s.back() == want) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

 private:
  std::string socket_;
};

TEST(ChatTmuxTest, IncomingMessageDoesNotCorruptTheLineBeingTyped) {
  if (!Tmux::Available()) GTEST_SKIP() << "tmux is not installed (scripts/lib/common.sh)";
  Stack stack;
  stack.StartBroker();
  stack.StartEdge();
  stack.StartActor("auth,directory,msg");
  ASSERT_TRUE(WaitWorkers(stack, "msg", 1));
  TestUser alice = RegisterUser(stack, "alice"), bob = RegisterUser(stack, "bob");
  client::Client b = LoggedIn(stack, bob);

  Tmux tmux;
  tmux.Start(std::string(IMBUS_CLIENT_BIN) +
             " --server 127.0.0.1:" + std::to_string(stack.edge_port()) + " --user " + alice.name +
             " --password " + kPassword + " chat --to " + bob.name);
  const std::string prompt = bob.name + "> ";
  ASSERT_TRUE(tmux.WaitLastLine(prompt.substr(0, prompt.size() - 1), seconds(15)))
      << tmux.Text() << stack.Logs();

  // Half a line typed, cursor moved left twice: then a message arrives.
  const std::string typed = "half typed line";
  tmux.Keys(typed);
  ASSERT_TRUE(tmux.WaitLastLine(prompt + typed, seconds(5))) << tmux.Text();
  tmux.Key("Left Left");
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(client::SendToUser(b, alice.uid, "in1", "incoming while typing").ok());
  ASSERT_TRUE(tmux.WaitFor("incoming while typing", seconds(10))) << tmux.Text();
  std::this_thread::sleep_for(milliseconds(300));

  // The message sits on its own line above; the typed line is whole, last, once.
  std::vector<std::string> screen = tmux.Screen();
  ASSERT_GE(screen.size(), 2u) << tmux.Text();
  EXPECT_EQ(screen.back(), prompt + typed) << tmux.Text();
  const std::string& above = screen[screen.size() - 2];
  EXPECT_NE(above.find(bob.name + ": incoming while typing"), std::string::npos) << tmux.Text();
  EXPECT_EQ(above.find(typed), std::string::npos) << tmux.Text();
  size_t copies = 0;
  for (const std::string& l : screen) copies += l.find(typed) != std::string::npos ? 1 : 0;
  EXPECT_EQ(copies, 1u) << tmux.Text();

  // The cursor stayed where it was: typing inserts there; Enter sends the exact line.
  tmux.Keys("X");
  tmux.Key("Enter");
  std::optional<client::Message> m = WaitMessage(b, seconds(10));
  ASSERT_TRUE(m.has_value()) << tmux.Text();
  EXPECT_EQ(m->text, "half typed liXne");

  // History: Up brings the line back.
  ASSERT_TRUE(tmux.WaitLastLine(prompt.substr(0, prompt.size() - 1), seconds(5))) << tmux.Text();
  tmux.Key("Up");
  EXPECT_TRUE(tmux.WaitLastLine(prompt + "half typed liXne", seconds(5))) << tmux.Text();
  tmux.Key("C-u");
  tmux.Keys("/quit");
  tmux.Key("Enter");
}

}  // namespace
}  // namespace imbus::testing

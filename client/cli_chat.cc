// `imbus chat`: an interactive session. Logs in once, catches up with SYNC, then
// sends every typed line to the current peer or group and prints incoming messages
// and friends' presence as they arrive. Lines starting with '/' are commands.
//
// One thread: poll() on stdin and the connection; a PING every idle_timeout/3 keeps
// the connection alive. Works with a pipe on stdin too (scripts, tests).
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "client/cli.h"
#include "client/cli_session.h"
#include "client/msg_api.h"
#include "codec/body.h"
#include "codec/commands.h"

namespace imbus::client::cli {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct ChatArgs {
  SessionArgs session;
  std::string to;  // UID|NAME
  uint64_t group = 0;
};

constexpr char kHelp[] =
    "  /to NAME|UID     talk to a user          /group GID    talk to a group\n"
    "  /history [N]     last N messages here    /sync         fetch missed messages\n"
    "  /convs           conversations, unread   /help         this text\n"
    "  /quit            leave (Ctrl-D too)\n";

class ChatSession {
 public:
  ChatSession(Client* client, uint64_t self) : client_(client), self_(self) {}

  int Run(const ChatArgs& args) {
    if (!args.to.empty()) SetPeer(args.to);
    if (args.group != 0) SetGroup(args.group);
    std::cout << "logged in as " << Name(self_) << " (uid " << self_ << "); /help for commands\n";
    DoSync();
    Prompt();
    auto last_ping = Clock::now();
    std::string pending;  // stdin bytes not yet ending in '\n'
    for (;;) {
      DrainPushes();
      if (client_->connection().closed()) {
        std::cout << "* disconnected: " << client_->connection().close_reason() << "\n";
        return kExitConnect;
      }
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {client_->connection().fd(), POLLIN, 0}};
      const int ready = ::poll(fds, 2, 1000);
      if (ready < 0 && errno != EINTR) return kExitConnect;
      if (Clock::now() - last_ping > std::chrono::seconds(10)) {
        if (!client_->Ping().ok()) {
          std::cout << "* the server stopped answering\n";
          return kExitConnect;
        }
        last_ping = Clock::now();
      }
      if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
        char buf[4096];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) return kExitOk;  // Ctrl-D / end of the pipe
        pending.append(buf, static_cast<size_t>(n));
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
          std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!HandleLine(line)) return kExitOk;
          Prompt();
        }
      }
    }
  }

 private:
  // False when the user asked to leave.
  bool HandleLine(const std::string& line) {
    if (line.empty()) return true;
    if (line[0] != '/') {
      Send(line);
      return true;
    }
    std::istringstream in(line);
    std::string cmd, arg;
    in >> cmd >> arg;
    if (cmd == "/quit" || cmd == "/exit") return false;
    if (cmd == "/help") {
      std::cout << kHelp;
    } else if (cmd == "/to" && !arg.empty()) {
      SetPeer(arg);
    } else if (cmd == "/group" && !arg.empty()) {
      SetGroup(std::strtoull(arg.c_str(), nullptr, 10));
    } else if (cmd == "/sync") {
      DoSync();
    } else if (cmd == "/history") {
      ShowHistory(arg.empty() ? 20 : std::strtoull(arg.c_str(), nullptr, 10));
    } else if (cmd == "/convs") {
      auto r = Conversations(*client_);
      if (!r.ok()) return Fail("convs", r.code, r.error);
      for (const ConvInfo& c : r.value) {
        std::cout << "  " << c.conv << "  last " << c.last_seq << "  unread "
                  << (c.last_seq - std::min(c.last_seq, c.acked_seq)) << "\n";
      }
    } else {
      std::cout << "unknown command " << cmd << "\n" << kHelp;
    }
    return true;
  }

  bool Fail(const std::string& what, int code, const std::string& error) {
    std::cout << "* " << what << " failed: " << DescribeResult(code, error) << "\n";
    return true;
  }

  void SetPeer(const std::string& who) {
    uint64_t uid = 0;
    if (ResolveUser(*client_, who, &uid) != kExitOk) return;
    peer_ = uid;
    group_ = 0;
    std::cout << "* talking to " << Name(uid) << "\n";
  }

  void SetGroup(uint64_t gid) {
    group_ = gid;
    peer_ = 0;
    std::cout << "* talking to group " << gid << "\n";
  }

  void Send(const std::string& text) {
    if (peer_ == 0 && group_ == 0) {
      std::cout << "* nobody to talk to yet: /to NAME or /group GID\n";
      return;
    }
    const std::string cmid = NewCmid();
    // One resend with the same cmid on a transient failure: never a duplicate.
    Result<SentMessage> r;
    for (int attempt = 0; attempt < 2; ++attempt) {
      r = group_ != 0 ? SendToGroup(*client_, group_, cmid, text)
                      : SendToUser(*client_, peer_, cmid, text);
      if (r.code != static_cast<int>(codec::Code::kUnavailable) && r.code != kCodeTimeout) break;
    }
    if (!r.ok()) {
      Fail("send", r.code, r.error);
      return;
    }
    std::cout << "  [" << r.value.conv << " #" << r.value.seq << "] sent\n";
    acked_[r.value.conv] = std::max(acked_[r.value.conv], r.value.seq);
  }

  void Print(const Message& m) {
    const std::time_t secs = static_cast<std::time_t>(m.ts / 1000);
    char when[16];
    std::strftime(when, sizeof when, "%H:%M", std::localtime(&secs));
    std::cout << when << " [" << m.conv << " #" << m.seq << "] " << Name(m.from) << ": " << m.text
              << "\n";
  }

  void DrainPushes() {
    while (auto push = client_->connection().PollPushes()) {
      if (auto m = MessageFromPush(*push)) {
        if (m->seq <= acked_[m->conv]) continue;  // already shown (a resend's re-push)
        Print(*m);
        acked_[m->conv] = m->seq;
        Ack(*client_, m->conv, m->seq);
      } else if (push->service == codec::ToWire(codec::Service::kPresence) &&
                 push->command == codec::presence::kStatus) {
        const uint64_t uid = push->body.GetUint("uid").value_or(0);
        const bool online = push->body.GetBool("online").value_or(false);
        std::cout << "* " << Name(uid) << " is " << (online ? "online" : "offline") << "\n";
      } else if (push->service == codec::ToWire(codec::Service::kAuth) &&
                 push->command == codec::auth::kKicked) {
        std::cout << "* kicked: " << push->body.GetString("reason").value_or("") << "\n";
      } else if (push->is_error()) {
        std::cout << "* server error: " << push->body.GetString("error").value_or("") << "\n";
      }
    }
  }

  void DoSync() {
    for (int rounds = 0; rounds < 100; ++rounds) {
      auto r = Sync(*client_);
      if (!r.ok()) {
        Fail("sync", r.code, r.error);
        return;
      }
      std::map<std::string, uint64_t> last;
      for (const Message& m : r.value.messages) {
        Print(m);
        last[m.conv] = std::max(last[m.conv], m.seq);
      }
      for (const auto& [conv, seq] : last) {
        acked_[conv] = std::max(acked_[conv], seq);
        Ack(*client_, conv, seq);
      }
      if (!r.value.more) return;
    }
  }

  void ShowHistory(uint64_t n) {
    std::string conv;
    if (group_ != 0) {
      conv = "g:" + std::to_string(group_);
    } else if (peer_ != 0) {
      conv = "d:" + std::to_string(std::min(self_, peer_)) + ":" +
             std::to_string(std::max(self_, peer_));
    } else {
      std::cout << "* pick a conversation first: /to or /group\n";
      return;
    }
    auto r = History(*client_, conv, 0, std::min<uint64_t>(std::max<uint64_t>(n, 1), 100));
    if (!r.ok()) {
      Fail("history", r.code, r.error);
      return;
    }
    for (auto it = r.value.rbegin(); it != r.value.rend(); ++it) Print(*it);
  }

  // "name" for a uid, asked once with GET_USER and remembered.
  std::string Name(uint64_t uid) {
    auto it = names_.find(uid);
    if (it != names_.end()) return it->second;
    codec::MapWriter w(1);
    w.Key("uid").Uint(uid);
    Response r = client_->Call(codec::ToWire(codec::Service::kDirectory),
                               codec::directory::kGetUser, w.Finish());
    std::string name = r.ok() ? r.body.GetString("name").value_or("") : "";
    if (name.empty()) name = "uid " + std::to_string(uid);
    names_[uid] = name;
    return name;
  }

  void Prompt() {
    if (::isatty(STDIN_FILENO) == 0) return;
    std::cout << (group_ != 0   ? "g:" + std::to_string(group_)
                  : peer_ != 0 ? Name(peer_)
                               : std::string("-"))
              << "> " << std::flush;
  }

  Client* client_;
  uint64_t self_;
  uint64_t peer_ = 0;
  uint64_t group_ = 0;
  std::map<uint64_t, std::string> names_;
  std::map<std::string, uint64_t> acked_;  // highest seq shown per conversation
};

int RunChat(const GlobalOptions& g, const ChatArgs& args) {
  Client client(milliseconds(g.timeout_ms));
  if (int rc = LoginForCommand(g, args.session, &client); rc != kExitOk) return rc;
  std::cout.setf(std::ios::unitbuf);  // every line out at once, also into a pipe
  ChatSession chat(&client, client.session()->uid);
  return chat.Run(args);
}

}  // namespace

Command AddChat(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "chat", "Interactive chat: type to send, incoming messages appear as they arrive");
  auto args = std::make_shared<ChatArgs>();
  sub->add_option("--to", args->to, "start talking to this user (NAME or UID)");
  sub->add_option("--group", args->group, "start talking to this group (GID)");
  AddSessionOptions(sub, &args->session);
  sub->footer(std::string("\nIn the chat:\n") + kHelp);
  return {sub, [&g, args] { return RunChat(g, *args); }};
}

}  // namespace imbus::client::cli

// `imbus chat`: an interactive session. Logs in once, catches up with SYNC, then
// sends every typed line to the current peer or group and prints incoming messages
// and friends' presence as they arrive. Lines starting with '/' are commands.
//
// One thread: poll() on stdin, the edge connection, the P2P listener and the direct
// P2P connection; a PING every 10 s keeps the edge connection alive. On a terminal
// the line is edited with libedit (LineEditor: history, editing keys), and what
// arrives meanwhile is printed above the line being typed, which is then drawn
// again as it was; typing sends TYPING notices (at most every 3 s). Works with a
// pipe on stdin too (plain lines: scripts, tests). `/p2p NAME` talks to NAME directly
// (client/p2p.h) when a path through the NATs exists, else through the server; P2P_INCOMING pushes
// make it dial back. `/file PATH` sends a file (directly over P2P when talking
// directly, else uploaded and sent as a file message); files offered over P2P are
// saved into --dir, and a direct transfer that broke off is completed from the
// file message that follows (only the missing bytes are downloaded).
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/cli.h"
#include "client/cli_progress.h"
#include "client/cli_session.h"
#include "client/file_api.h"
#include "client/line_editor.h"
#include "client/msg_api.h"
#include "client/p2p.h"
#include "client/presence_api.h"
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
  int p2p_timeout_ms = 5000;
  std::string dir = ".";  // where files sent directly (P2P) are saved
  bool quiet = false;     // no progress bar
};

constexpr char kHelp[] =
    "  /to NAME|UID     talk to a user          /group GID    talk to a group\n"
    "  /history [N]     last N messages here    /sync         fetch missed messages\n"
    "  /convs           conversations, unread   /help         this text\n"
    "  /recall SEQ      take a message back     /edit SEQ TEXT  change a message\n"
    "  /p2p NAME|UID    talk to a user directly (P2P), through the server if no path\n"
    "  /file PATH       send a file here (directly when talking P2P)\n"
    "  /get ID          download a file of a message into --dir\n"
    "  /quit            leave (Ctrl-D too)\n";

class ChatSession {
 public:
  // `p2p` may be null (no P2P listener: everything goes through the server).
  ChatSession(Client* client, uint64_t self, P2pSession* p2p, std::string dir, bool quiet)
      : client_(client), self_(self), p2p_(p2p), dir_(std::move(dir)), quiet_(quiet) {}

  int Run(const ChatArgs& args) {
    if (!args.to.empty()) SetPeer(args.to);
    if (args.group != 0) SetGroup(args.group);
    std::cout << "logged in as " << Name(self_) << " (uid " << self_ << "); /help for commands\n";
    DoSync();
    std::unique_ptr<LineEditor> editor;
    bool quit = false;
    if (LineEditor::Usable()) {
      editor = std::make_unique<LineEditor>(
          PromptText(),
          [this, &quit, &editor](std::string line) {
            if (!HandleLine(line)) quit = true;
            editor->SetPrompt(PromptText());
          },
          [&quit] { quit = true; });
      editor_ = editor.get();
    }
    Prompt();
    auto last_ping = Clock::now();
    std::string pending;  // stdin bytes not yet ending in '\n'
    for (;;) {
      DrainPushes();
      DrainP2p();
      if (editor_ != nullptr) editor_->Redraw();  // below what was printed, as it was
      if (client_->connection().closed()) {
        Async() << "* disconnected: " << client_->connection().close_reason() << "\n";
        return kExitConnect;
      }
      std::vector<pollfd> fds = {{STDIN_FILENO, POLLIN, 0},
                                 {client_->connection().fd(), POLLIN, 0}};
      if (p2p_ != nullptr) {
        fds.push_back({p2p_->listener_fd(), POLLIN, 0});
        fds.push_back({p2p_->direct_fd(), POLLIN, 0});  // -1 when absent: skipped
      }
      const int ready = ::poll(fds.data(), fds.size(), 1000);
      if (ready < 0 && errno != EINTR) return kExitConnect;
      if (Clock::now() - last_ping > std::chrono::seconds(10)) {
        if (!client_->Ping().ok()) {
          std::cout << "* the server stopped answering\n";
          return kExitConnect;
        }
        last_ping = Clock::now();
      }
      if (editor_ != nullptr && (fds[0].revents & (POLLIN | POLLHUP)) != 0) {
        editor_->OnReadable();
        if (quit) return kExitOk;
        NoteTyping(editor_->Typed());
      } else if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
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
    } else if (cmd == "/p2p" && !arg.empty()) {
      StartP2p(arg);
    } else if (cmd == "/file" && !arg.empty()) {
      std::string rest;
      std::getline(in, rest);
      SendFileHere(arg + rest);
    } else if (cmd == "/get" && !arg.empty()) {
      GetFile(arg, {});
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
        std::cout << "  " << c.conv << " " << ConvTitle(c.conv) << "  last " << c.last_seq
                  << "  unread " << (c.last_seq - std::min(c.last_seq, c.acked_seq));
        if (c.peer_acked_seq) std::cout << "  read by them up to #" << *c.peer_acked_seq;
        std::cout << "\n";
      }
    } else if ((cmd == "/recall" || cmd == "/edit") && !arg.empty()) {
      const std::string conv = CurrentConv();
      if (conv.empty()) {
        std::cout << "* pick a conversation first: /to or /group\n";
        return true;
      }
      const uint64_t seq = std::strtoull(arg.c_str(), nullptr, 10);
      std::string text;
      std::getline(in >> std::ws, text);
      if (cmd == "/edit" && text.empty()) {
        std::cout << "* /edit SEQ TEXT\n";
        return true;
      }
      auto r = cmd == "/recall" ? Recall(*client_, conv, seq) : Edit(*client_, conv, seq, text);
      if (!r.ok()) return Fail(cmd.substr(1), r.code, r.error);
      std::cout << "* #" << seq << (cmd == "/recall" ? " recalled" : " edited") << "\n";
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
    if (p2p_ != nullptr && group_ == 0 && p2p_->peer() == peer_ &&
        p2p_->path() == P2pPath::kDirect) {
      std::string error;
      const P2pPath path = p2p_->Send(text, &error);
      if (path == P2pPath::kNone) {
        std::cout << "* send failed: " << error << "\n";
      } else {
        std::cout << "  [" << P2pPathName(path) << "] sent\n";
      }
      return;
    }
    const std::string cmid = NewCmid();
    // Resends with the same cmid on a transient failure: never a duplicate. A busy
    // server (RATE_LIMITED) says when to come back: wait that long, within reason.
    Result<SentMessage> r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      r = group_ != 0 ? SendToGroup(*client_, group_, cmid, text)
                      : SendToUser(*client_, peer_, cmid, text);
      if (r.code == static_cast<int>(codec::Code::kRateLimited) && r.retry_ms > 0 &&
          r.retry_ms <= 5000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(r.retry_ms));
        continue;
      }
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
    if (m.file && !m.recalled) {
      PrintFile(m, *m.file);
      return;
    }
    const std::time_t secs = static_cast<std::time_t>(m.ts / 1000);
    char when[16];
    std::strftime(when, sizeof when, "%H:%M", std::localtime(&secs));
    Async() << when << " [" << m.conv << " #" << m.seq << "] " << Name(m.from) << ": "
            << (m.recalled ? "(recalled)" : m.text) << (m.edited_ts != 0 ? " (edited)" : "")
            << "\n";
  }

  void PrintFile(const Message& m, const FileInfo& f) {
    const std::time_t secs = static_cast<std::time_t>(m.ts / 1000);
    char when[16];
    std::strftime(when, sizeof when, "%H:%M", std::localtime(&secs));
    Async() << when << " [" << m.conv << " #" << m.seq << "] " << Name(m.from) << ": [file] "
            << f.name << " (" << HumanSize(f.size)
            << (f.width != 0 ? ", " + std::to_string(f.width) + "x" + std::to_string(f.height) : "")
            << ") id=" << f.file << "  (/get " << f.file << ", or imbus get-file " << f.file << ")"
            << (m.text.empty() || m.text == "[file] " + f.name ? "" : " " + m.text) << "\n";
  }

  // /file PATH: over the direct connection when talking P2P (falling back to the
  // stored upload), else uploaded and sent as a file message.
  void SendFileHere(const std::string& path) {
    if (peer_ == 0 && group_ == 0) {
      std::cout << "* nobody to talk to yet: /to NAME or /group GID\n";
      return;
    }
    Async();
    ProgressBar bar("send " + BaseName(path), quiet_);
    TransferOptions options;
    options.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); };
    if (p2p_ != nullptr && group_ == 0 && p2p_->peer() == peer_ &&
        p2p_->path() == P2pPath::kDirect) {
      auto r = SendFileDirectOrStored(*p2p_, *client_, peer_, path, options);
      bar.Finish();
      if (!r.ok()) {
        Fail("file", r.code, r.error);
      } else if (r.value.via == P2pPath::kDirect) {
        std::cout << "  [direct] sent " << BaseName(path) << "\n";
      } else {
        std::cout << "  [" << r.value.message.conv << " #" << r.value.message.seq << "] sent "
                  << r.value.stored.name << " through the server (direct: " << r.value.direct_error
                  << ")\n";
        acked_[r.value.message.conv] = std::max(acked_[r.value.message.conv], r.value.message.seq);
      }
      return;
    }
    auto up = UploadFile(*client_, path, options);
    bar.Finish();
    if (!up.ok()) {
      Fail("upload", up.code, up.error);
      return;
    }
    const std::string cmid = NewCmid();
    auto r = group_ != 0 ? SendFileToGroup(*client_, group_, cmid, up.value.file)
                         : SendFileToUser(*client_, peer_, cmid, up.value.file);
    if (!r.ok()) {
      Fail("send", r.code, r.error);
      return;
    }
    std::cout << "  [" << r.value.conv << " #" << r.value.seq << "] sent " << up.value.name << " ("
              << HumanSize(up.value.size) << ") id=" << up.value.file << "\n";
    acked_[r.value.conv] = std::max(acked_[r.value.conv], r.value.seq);
  }

  // Downloads file `id` into `path` (empty: its name in --dir).
  void GetFile(const std::string& id, std::string path) {
    if (path.empty()) {
      auto info = GetFileInfo(*client_, id);
      if (!info.ok()) {
        Fail("get", info.code, info.error);
        return;
      }
      path = dir_ + "/" + info.value.name;
    }
    Async();
    ProgressBar bar("get " + BaseName(path), quiet_);
    TransferOptions options;
    options.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); };
    auto r = DownloadFile(*client_, id, path, options);
    bar.Finish();
    if (!r.ok()) {
      Fail("get", r.code, r.error);
      return;
    }
    Async() << "* saved " << r.value.path << " (" << HumanSize(r.value.info.size)
            << ", sha256 checked"
            << (r.value.resumed_from != 0
                    ? "; " + HumanSize(r.value.resumed_from) + " had come directly"
                    : "")
            << ")\n";
  }

  // Output that is not the answer to a typed line: above the line being edited.
  std::ostream& Async() {
    if (editor_ != nullptr) editor_->Hide();
    return std::cout;
  }

  std::string CurrentConv() const {
    if (group_ != 0) return "g:" + std::to_string(group_);
    if (peer_ != 0) {
      return "d:" + std::to_string(std::min(self_, peer_)) + ":" +
             std::to_string(std::max(self_, peer_));
    }
    return {};
  }

  // "(with NAME)" for a direct conversation, "(group GID)" for a group's.
  std::string ConvTitle(const std::string& conv) {
    if (conv.rfind("g:", 0) == 0) return "(group " + conv.substr(2) + ")";
    const size_t colon = conv.find(':', 2);
    if (conv.rfind("d:", 0) != 0 || colon == std::string::npos) return {};
    const uint64_t lo = std::strtoull(conv.c_str() + 2, nullptr, 10);
    const uint64_t hi = std::strtoull(conv.c_str() + colon + 1, nullptr, 10);
    return "(with " + Name(lo == self_ ? hi : lo) + ")";
  }

  // The user is typing `typed`: a TYPING notice to the current conversation, at most
  // every 3 s (the server's limit is lower; receivers show it for 5 s).
  void NoteTyping(const std::string& typed) {
    const std::string conv = CurrentConv();
    if (typed.empty() || typed[0] == '/' || conv.empty()) return;
    const auto now = Clock::now();
    if (now - last_typing_ < std::chrono::seconds(3)) return;
    last_typing_ = now;
    (void)Typing(*client_, conv);
  }

  void StartP2p(const std::string& who) {
    uint64_t uid = 0;
    if (ResolveUser(*client_, who, &uid) != kExitOk) return;
    peer_ = uid;
    group_ = 0;
    if (p2p_ == nullptr) {
      std::cout << "* talking to " << Name(uid) << ": relayed (P2P is not available here)\n";
      return;
    }
    std::cout << "* connecting to " << Name(uid) << " directly...\n";
    const P2pPath path = p2p_->Start(uid);
    std::cout << "* talking to " << Name(uid) << ": " << P2pPathName(path)
              << (path == P2pPath::kDirect ? " (P2P)" : " (through the server)") << "\n";
  }

  // Incoming P2P TEXT and path changes.
  void DrainP2p() {
    if (p2p_ == nullptr) return;
    for (const P2pEvent& e : p2p_->Poll(milliseconds(0))) {
      if (e.kind == P2pEvent::Kind::kFileStarted) {
        Async() << "* " << Name(e.from) << " is sending " << e.name << " (" << HumanSize(e.size)
                << ") directly" << (e.offset != 0 ? ", resuming at " + HumanSize(e.offset) : "")
                << "\n";
      } else if (e.kind == P2pEvent::Kind::kFileReceived) {
        Async() << "* [file] " << e.name << " (" << HumanSize(e.size) << ") from " << Name(e.from)
                << " saved as " << e.path << " (direct, sha256 checked)\n";
      } else if (e.kind == P2pEvent::Kind::kFileBroken) {
        Async() << "* the direct transfer of " << e.name << " stopped at " << HumanSize(e.offset)
                << " (" << e.note << ")"
                << (e.offset != 0 ? "; the rest will come from the file message" : "") << "\n";
        if (e.offset != 0) broken_[e.sha256] = e.path.substr(0, e.path.size() - 5);  // - ".part"
      } else if (e.kind == P2pEvent::Kind::kText) {
        const std::time_t secs = static_cast<std::time_t>(e.ts / 1000);
        char when[16];
        std::strftime(when, sizeof when, "%H:%M", std::localtime(&secs));
        Async() << when << " [direct] " << Name(e.from) << ": " << e.text << "\n";
      } else {
        Async() << "* talking to " << Name(e.from) << ": relayed (" << e.note << ")\n";
      }
    }
  }

  void DrainPushes() {
    while (auto push = client_->connection().PollPushes()) {
      const bool msg_push = push->service == codec::ToWire(codec::Service::kMsg);
      const bool dir_push = push->service == codec::ToWire(codec::Service::kDirectory);
      if (auto in = ParseP2pIncoming(*push); in && p2p_ != nullptr) {
        Async() << "* " << Name(in->uid) << " wants to talk directly; dialing back...\n";
        peer_ = in->uid;
        group_ = 0;
        const P2pPath path = p2p_->Accept(*in);
        Async() << "* talking to " << Name(in->uid) << ": " << P2pPathName(path)
                << (path == P2pPath::kDirect ? " (P2P)" : " (through the server)") << "\n";
        if (editor_ != nullptr) editor_->SetPrompt(PromptText());
      } else if (auto m = MessageFromPush(*push)) {
        if (m->seq <= acked_[m->conv]) continue;  // already shown (a resend's re-push)
        if (m->file) {
          const FileInfo* f = &*m->file;
          Print(*m);
          if (auto it = broken_.find(f->sha256); it != broken_.end() && m->from != self_) {
            const std::string path = it->second;
            broken_.erase(it);
            GetFile(f->file, path);  // resumes from the direct transfer's .part
          }
        } else {
          Print(*m);
        }
        acked_[m->conv] = m->seq;
        Ack(*client_, m->conv, m->seq);
      } else if (auto u = UpdatedFromPush(*push)) {
        Async() << "* " << Name(u->from) << (u->recalled ? " recalled" : " edited") << " ["
                << u->conv << " #" << u->seq << "]" << (u->recalled ? "" : ": " + u->text) << "\n";
      } else if (auto r = ReadFromPush(*push)) {
        if (r->uid != self_ && r->conv == CurrentConv()) {
          Async() << "* " << Name(r->uid) << " has read up to #" << r->seq << "\n";
        }
      } else if (msg_push && push->command == codec::msg::kTypingNotice) {
        const uint64_t uid = push->body.GetUint("uid").value_or(0);
        const auto now = Clock::now();
        if (push->body.GetString("conv").value_or("") == CurrentConv() &&
            now - typing_shown_[uid] > std::chrono::seconds(5)) {
          typing_shown_[uid] = now;
          Async() << "* " << Name(uid) << " is typing...\n";
        }
      } else if (dir_push && push->command == codec::directory::kFriendEvent) {
        Async() << "* " << Name(push->body.GetUint("uid").value_or(0)) << ": "
                << push->body.GetString("event").value_or("") << " (friends)\n";
      } else if (dir_push && push->command == codec::directory::kGroupEvent) {
        Async() << "* group " << push->body.GetUint("gid").value_or(0) << ": "
                << Name(push->body.GetUint("uid").value_or(0)) << " "
                << push->body.GetString("event").value_or("") << "\n";
      } else if (push->service == codec::ToWire(codec::Service::kPresence) &&
                 push->command == codec::presence::kStatus) {
        const uint64_t uid = push->body.GetUint("uid").value_or(0);
        const bool online = push->body.GetBool("online").value_or(false);
        Async() << "* " << Name(uid) << " is " << (online ? "online" : "offline") << "\n";
      } else if (push->service == codec::ToWire(codec::Service::kAuth) &&
                 push->command == codec::auth::kKicked) {
        Async() << "* kicked: " << push->body.GetString("reason").value_or("") << "\n";
      } else if (push->service == codec::ToWire(codec::Service::kSys) &&
                 push->command == codec::sys::kNotice) {
        Async() << "* notice from the operator: " << push->body.GetString("text").value_or("")
                << "\n";
      } else if (push->service == codec::ToWire(codec::Service::kSys) &&
                 push->command == codec::sys::kReconnect) {
        Async() << "* this server is being drained; reconnect to "
                << push->body.GetString("host").value_or("?") << ":"
                << push->body.GetUint("port").value_or(0) << "\n";
      } else if (push->is_error()) {
        Async() << "* server error: " << push->body.GetString("error").value_or("") << "\n";
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

  std::string PromptText() {
    return (group_ != 0  ? "g:" + std::to_string(group_)
            : peer_ != 0 ? Name(peer_)
                         : std::string("-")) +
           "> ";
  }

  void Prompt() {
    if (::isatty(STDIN_FILENO) == 0 || editor_ != nullptr) return;
    std::cout << PromptText() << std::flush;
  }

  Client* client_;
  uint64_t self_;
  uint64_t peer_ = 0;
  uint64_t group_ = 0;
  P2pSession* p2p_;
  std::string dir_;
  bool quiet_;
  // Direct transfers that broke off: sha256 -> the path their .part belongs to.
  std::map<std::string, std::string> broken_;
  std::map<uint64_t, std::string> names_;
  std::map<std::string, uint64_t> acked_;  // highest seq shown per conversation
  LineEditor* editor_ = nullptr;           // on a terminal only
  Clock::time_point last_typing_;
  std::map<uint64_t, Clock::time_point> typing_shown_;
};

int RunChat(const GlobalOptions& g, const ChatArgs& args) {
  Client client(milliseconds(g.timeout_ms));
  if (int rc = LoginForCommand(g, args.session, &client); rc != kExitOk) return rc;
  std::cout.setf(std::ios::unitbuf);  // every line out at once, also into a pipe
  // For P2P the edge connection must come from a reusable port shared with the P2P
  // listener: reconnect that way and RESUME with the session's token.
  P2pOptions options;
  options.direct_timeout = milliseconds(std::max(args.p2p_timeout_ms, 0));
  P2pSession p2p(&client, options);
  bool p2p_ok = false;
  const std::string token = client.session()->token;
  const std::optional<Endpoint> server = ParseServer(g.server);
  std::string error;
  if (server && !token.empty() && p2p.ConnectAndListen(server->host, server->port, &error)) {
    LoginRequest fields;
    fields.device = g.device;
    p2p.FillLogin(&fields);
    auto r = client.ResumeWithP2p(token, fields);
    p2p_ok = r.ok();
    if (!r.ok()) error = r.Describe();
  }
  if (!p2p_ok) {
    std::cout << "* direct chat (P2P) unavailable: " << error << "\n";
    if (client.connection().closed() || !client.session()) {
      if (int rc = LoginForCommand(g, args.session, &client); rc != kExitOk) return rc;
    }
  }
  p2p.set_receive_dir(args.dir);
  ChatSession chat(&client, client.session()->uid, p2p_ok ? &p2p : nullptr, args.dir, args.quiet);
  const int rc = chat.Run(args);
  p2p.Close();  // BYE to a direct peer, so it moves to the relay at once
  return rc;
}

}  // namespace

Command AddChat(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "chat", "Interactive chat: type to send, incoming messages appear as they arrive");
  auto args = std::make_shared<ChatArgs>();
  sub->add_option("--to", args->to, "start talking to this user (NAME or UID)");
  sub->add_option("--group", args->group, "start talking to this group (GID)");
  sub->add_option("--p2p-timeout-ms", args->p2p_timeout_ms,
                  "how long /p2p tries for a direct connection before relaying")
      ->envname("IMBUS_P2P_TIMEOUT_MS")
      ->check(CLI::Range(0, 60000));
  sub->add_option("--dir", args->dir,
                  "where files go: those sent directly (P2P) and /get downloads")
      ->capture_default_str();
  sub->add_flag("--quiet,-q", args->quiet, "no progress bar for /file and /get");
  AddSessionOptions(sub, &args->session);
  sub->footer(std::string("\nIn the chat:\n") + kHelp);
  return {sub, [&g, args] { return RunChat(g, *args); }};
}

}  // namespace imbus::client::cli

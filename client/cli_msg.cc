// `imbus send`, `imbus sync`, `imbus history`, `imbus convs`: the MSG service.
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "client/cli.h"
#include "client/cli_session.h"
#include "client/directory_api.h"
#include "client/file_api.h"
#include "client/msg_api.h"

namespace imbus::client::cli {

namespace {

struct SendArgs {
  SessionArgs session;
  std::string to;
  std::string text;
  std::optional<uint64_t> group;
  std::string cmid;
};

struct SyncArgs {
  SessionArgs session;
  uint64_t limit = 200;
  bool no_ack = false;
};

struct HistoryArgs {
  SessionArgs session;
  std::string conv;
  uint64_t before = 0;
  uint64_t limit = 50;
};

struct ConvsArgs {
  SessionArgs session;
};

std::string FormatTs(int64_t ts_ms) {
  const std::time_t t = static_cast<std::time_t>(ts_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// "[2024-05-01 12:00:00] d:3:7 #12 <alice> text"
// A user's name for the output, asked once per uid (GET_USER); "uid N" when the
// user is gone.
class Names {
 public:
  explicit Names(Client* client) : client_(client) {}
  std::string Of(uint64_t uid) {
    auto it = names_.find(uid);
    if (it != names_.end()) return it->second;
    Result<UserInfo> r = GetUser(*client_, uid);
    std::string name =
        r.ok() && !r.value.name.empty() ? r.value.name : "uid " + std::to_string(uid);
    names_[uid] = name;
    return name;
  }
  // "alice" for d:1:2 seen by bob (uid 2); "group 5" for g:5.
  std::string Peer(const std::string& conv, uint64_t self) {
    if (conv.rfind("g:", 0) == 0) return "group " + conv.substr(2);
    const size_t colon = conv.find(':', 2);
    if (conv.rfind("d:", 0) != 0 || colon == std::string::npos) return conv;
    const uint64_t lo = std::strtoull(conv.c_str() + 2, nullptr, 10);
    const uint64_t hi = std::strtoull(conv.c_str() + colon + 1, nullptr, 10);
    return Of(lo == self ? hi : lo);
  }

 private:
  Client* client_;
  std::map<uint64_t, std::string> names_;
};

void PrintMessage(Names& names, const Message& m) {
  std::cout << "[" << FormatTs(m.ts) << "] " << m.conv << " #" << m.seq << " <" << names.Of(m.from)
            << "> ";
  if (m.file && !m.recalled) {
    // "[file] name (1.5 MB) id=F  (imbus get-file F)" and the caption, if any.
    std::cout << "[file] " << m.file->name << " (" << HumanSize(m.file->size)
              << ") id=" << m.file->file << "  (imbus get-file " << m.file->file << ")"
              << (m.text.empty() || m.text == "[file] " + m.file->name ? "" : " " + m.text);
  } else {
    std::cout << (m.recalled ? "(recalled)" : m.text);
  }
  std::cout << (m.edited_ts != 0 ? " (edited)" : "") << "\n";
}

int RunSend(const GlobalOptions& g, const SendArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  std::optional<uint64_t> gid = a.group;
  uint64_t uid = 0;
  if (!gid && a.to.rfind("g:", 0) == 0) {
    try {
      gid = std::stoull(a.to.substr(2));
    } catch (const std::exception&) {
      throw UsageError("bad group '" + a.to + "': use g:GID");
    }
  }
  if (!gid) {
    if (a.to.empty()) throw UsageError("send needs TO (NAME, UID or g:GID) or --group GID");
    if (int rc = ResolveUser(client, a.to, &uid); rc != kExitOk) return rc;
  }
  const std::string cmid = a.cmid.empty() ? NewCmid() : a.cmid;
  Result<SentMessage> r =
      gid ? SendToGroup(client, *gid, cmid, a.text) : SendToUser(client, uid, cmid, a.text);
  if (!r.ok()) return ReportFailure("send", r.code, r.error);
  std::cout << "sent " << r.value.conv << " #" << r.value.seq << " at " << FormatTs(r.value.ts)
            << " (cmid " << cmid << ")\n";
  return kExitOk;
}

// Prints every waiting message and ACKs each batch, until none is left.
int RunSync(const GlobalOptions& g, const SyncArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  size_t total = 0;
  Names names(&client);
  for (;;) {
    Result<SyncBatch> r = Sync(client, a.limit);
    if (!r.ok()) return ReportFailure("sync", r.code, r.error);
    std::map<std::string, uint64_t> newest;
    for (const Message& m : r.value.messages) {
      PrintMessage(names, m);
      newest[m.conv] = std::max(newest[m.conv], m.seq);
    }
    total += r.value.messages.size();
    if (a.no_ack) break;
    for (const auto& [conv, seq] : newest) {
      Result<Empty> ack = Ack(client, conv, seq);
      if (!ack.ok()) return ReportFailure("ack", ack.code, ack.error);
    }
    if (!r.value.more) break;
  }
  std::cout << total << " new message" << (total == 1 ? "" : "s") << "\n";
  return kExitOk;
}

int RunHistory(const GlobalOptions& g, const HistoryArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  Result<std::vector<Message>> r = History(client, a.conv, a.before, a.limit);
  if (!r.ok()) return ReportFailure("history", r.code, r.error);
  // The server answers newest first; print oldest first, like a chat window.
  Names names(&client);
  for (auto it = r.value.rbegin(); it != r.value.rend(); ++it) PrintMessage(names, *it);
  return kExitOk;
}

int RunConvs(const GlobalOptions& g, const ConvsArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  Result<std::vector<ConvInfo>> r = Conversations(client);
  if (!r.ok()) return ReportFailure("conversations", r.code, r.error);
  std::vector<std::vector<std::string>> rows;
  Names names(&client);
  const uint64_t self = client.session() ? client.session()->uid : 0;
  for (const ConvInfo& c : r.value) {
    rows.push_back({c.conv, names.Peer(c.conv, self), std::to_string(c.last_seq),
                    std::to_string(c.acked_seq),
                    std::to_string(c.last_seq - std::min(c.last_seq, c.acked_seq)),
                    c.peer_acked_seq ? std::to_string(*c.peer_acked_seq) : "-"});
  }
  PrintTable({"CONV", "WITH", "LAST", "ACKED", "UNREAD", "READ BY THEM"}, rows);
  return kExitOk;
}

}  // namespace

Command AddSend(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("send", "Send a message to a user or a group");
  auto args = std::make_shared<SendArgs>();
  sub->add_option("TO", args->to, "user NAME, UID (all digits), or g:GID for a group");
  sub->add_option("TEXT", args->text, "message text (UTF-8, 1-8192 bytes)");
  sub->add_option("--group", args->group, "send to this group instead of TO");
  sub->add_option("--cmid", args->cmid,
                  "message id for dedup (resending the same one stores nothing new); "
                  "default: random");
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] {
            // `send --group 5 TEXT`: the one positional is the text.
            if (args->group && !args->to.empty() && args->text.empty()) {
              std::swap(args->to, args->text);
            }
            if (args->text.empty()) throw UsageError("send needs TEXT");
            return RunSend(g, *args);
          }};
}

Command AddSync(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("sync", "Print messages not yet acknowledged, then ACK them");
  auto args = std::make_shared<SyncArgs>();
  sub->add_option("--limit", args->limit, "messages per SYNC request (1-500)")
      ->check(CLI::Range(1, 500))
      ->capture_default_str();
  sub->add_flag("--no-ack", args->no_ack, "print one batch without acknowledging it");
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunSync(g, *args); }};
}

Command AddHistory(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("history", "Print a conversation's past messages");
  auto args = std::make_shared<HistoryArgs>();
  sub->add_option("CONV", args->conv, "conversation: d:LO:HI or g:GID")->required();
  sub->add_option("--before", args->before, "only seqs below this (0: up to the newest)");
  sub->add_option("--limit", args->limit, "how many (1-100)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunHistory(g, *args); }};
}

Command AddConvs(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("convs", "List conversations with last and acked seq");
  auto args = std::make_shared<ConvsArgs>();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunConvs(g, *args); }};
}

}  // namespace imbus::client::cli

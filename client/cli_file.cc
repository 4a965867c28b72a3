// `imbus send-file`, `imbus get-file`: the FILE service (docs/protocol.md 6.9).
// send-file uploads (resuming after a lost connection) and sends a file message;
// with --p2p it sends the bytes straight to an online user over a P2P connection
// and falls back to the stored upload when none can be made or it breaks midway.
// get-file downloads through NAME.part, checks the sha256 and renames.
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "client/cli.h"
#include "client/cli_progress.h"
#include "client/cli_session.h"
#include "client/file_api.h"
#include "client/msg_api.h"
#include "client/p2p.h"

namespace imbus::client::cli {

namespace {

using std::chrono::milliseconds;

struct SendFileArgs {
  SessionArgs session;
  std::string to;
  std::string path;
  std::optional<uint64_t> group;
  std::string text;
  std::string name;
  std::string mime;
  bool p2p = false;
  bool quiet = false;
  int p2p_timeout_ms = 5000;
};

struct GetFileArgs {
  SessionArgs session;
  std::string id;
  std::string out;
  bool quiet = false;
};

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The token to RESUME with after a lost connection: the session's, else the saved one.
std::string ResumeToken(const Client& client) {
  if (client.session() && !client.session()->token.empty()) return client.session()->token;
  std::ifstream in(TokenPath());
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

// Reconnects and RESUMEs (a short pause first, so a restarting server has a chance).
Reconnect MakeReconnect(const GlobalOptions& g, Client* client, std::string token) {
  return [&g, client, token] {
    if (token.empty()) return false;
    std::this_thread::sleep_for(milliseconds(500));
    if (ConnectClient(g, client) != kExitOk) return false;
    return client->Resume(token, g.device).ok();
  };
}

std::string Describe(const FileInfo& f) {
  return f.name + " (" + HumanSize(f.size) + ") id=" + f.file;
}

int RunSendFile(const GlobalOptions& g, const SendFileArgs& a) {
  struct stat st {};
  if (::stat(a.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw UsageError("cannot read '" + a.path + "': not a regular file");
  }
  Client client(milliseconds(g.timeout_ms));
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  std::optional<uint64_t> gid = a.group;
  if (!gid && a.to.rfind("g:", 0) == 0) {
    try {
      gid = std::stoull(a.to.substr(2));
    } catch (const std::exception&) {
      throw UsageError("bad group '" + a.to + "': use g:GID");
    }
  }
  uint64_t uid = 0;
  if (!gid) {
    if (a.to.empty()) throw UsageError("send-file needs TO (NAME, UID or g:GID) or --group GID");
    if (int rc = ResolveUser(client, a.to, &uid); rc != kExitOk) return rc;
  }
  if (a.p2p && gid) throw UsageError("--p2p sends to one user, not to a group");
  const std::string token = ResumeToken(client);
  ProgressBar bar("upload " + BaseName(a.path), a.quiet);
  TransferOptions options;
  options.name = a.name;
  options.mime = a.mime;
  // With --p2p a second phase (the stored upload after a failed direct send) starts
  // again from 0: a new bar for it.
  auto last = std::make_shared<uint64_t>(0);
  const std::string base = BaseName(a.path);
  options.progress = [&bar, last, base](uint64_t done, uint64_t total) {
    if (done < *last) bar.Restart("upload " + base);
    *last = done;
    bar.Update(done, total);
  };
  options.reconnect = MakeReconnect(g, &client, token);

  if (a.p2p) {
    // The edge connection must come from the port the P2P listener shares: reconnect
    // that way and RESUME, as `imbus chat` does.
    P2pOptions p2p_options;
    p2p_options.direct_timeout = milliseconds(std::max(a.p2p_timeout_ms, 0));
    P2pSession p2p(&client, p2p_options);
    const std::optional<Endpoint> server = ParseServer(g.server);
    std::string error = token.empty() ? "no session token" : "";
    bool p2p_ok = false;
    if (server && !token.empty() && p2p.ConnectAndListen(server->host, server->port, &error)) {
      LoginRequest fields;
      fields.device = g.device;
      p2p.FillLogin(&fields);
      auto resumed = client.ResumeWithP2p(token, fields);
      p2p_ok = resumed.ok();
      if (!p2p_ok) error = resumed.Describe();
    }
    if (p2p_ok) {
      bar.Restart("send " + BaseName(a.path));
      Result<FileSendOutcome> r = SendFileDirectOrStored(p2p, client, uid, a.path, options);
      bar.Finish();
      p2p.Close();
      if (!r.ok()) return ReportFailure("send-file", r.code, r.error);
      if (r.value.via == P2pPath::kDirect) {
        std::cout << "sent " << BaseName(a.path) << " ("
                  << HumanSize(static_cast<uint64_t>(st.st_size)) << ") directly (P2P)\n";
      } else {
        std::cout << "sent " << Describe(r.value.stored) << " through the server as "
                  << r.value.message.conv << " #" << r.value.message.seq
                  << " (direct: " << r.value.direct_error << ")\n";
      }
      return kExitOk;
    }
    std::cerr << "imbus: P2P unavailable (" << error << "); sending through the server\n";
    if (!options.reconnect()) {
      return ReportFailure("reconnect", kCodeDisconnected, "cannot log in again");
    }
  }

  Result<FileInfo> up = UploadFile(client, a.path, options);
  bar.Finish();
  if (!up.ok()) return ReportFailure("upload", up.code, up.error);
  const std::string cmid = NewCmid();
  Result<SentMessage> r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = gid ? SendFileToGroup(client, *gid, cmid, up.value.file, a.text)
            : SendFileToUser(client, uid, cmid, up.value.file, a.text);
    if (r.ok() || (r.code != kCodeDisconnected && r.code != kCodeTimeout) || !options.reconnect()) {
      break;
    }
  }
  if (!r.ok()) return ReportFailure("send", r.code, r.error);
  std::cout << "sent " << Describe(up.value) << " as " << r.value.conv << " #" << r.value.seq
            << "\n";
  return kExitOk;
}

int RunGetFile(const GlobalOptions& g, const GetFileArgs& a) {
  if (!a.out.empty() && a.out.back() == '/' && !IsDir(a.out)) {
    std::cerr << "imbus: -o " << a.out << ": no such directory\n";
    return kExitUsage;
  }
  Client client(milliseconds(g.timeout_ms));
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  Result<FileInfo> info = GetFileInfo(client, a.id);
  if (!info.ok()) return ReportFailure("file info", info.code, info.error);
  TransferOptions options;
  std::string path = a.out;
  if (path.empty() || IsDir(path)) {
    if (path.empty()) path = ".";
    if (path.back() != '/') path += '/';
    path += info.value.name;
    options.no_clobber = true;  // a name we chose: never overwrite
  } else {
    options.no_clobber = false;  // the user named it
  }
  ProgressBar bar("download " + info.value.name, a.quiet);
  options.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); };
  options.reconnect = MakeReconnect(g, &client, ResumeToken(client));
  Result<Downloaded> r = DownloadFile(client, a.id, path, options);
  bar.Finish();
  if (!r.ok()) return ReportFailure("download", r.code, r.error);
  std::cout << "saved " << r.value.path << " (" << HumanSize(r.value.info.size) << ", "
            << r.value.info.mime << ", sha256 " << HexOf(r.value.info.sha256) << ")";
  if (r.value.resumed_from != 0) {
    std::cout << "; resumed after " << HumanSize(r.value.resumed_from);
  }
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

Command AddSendFile(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "send-file", "Upload a file and send it to a user or a group (or directly with --p2p)");
  auto args = std::make_shared<SendFileArgs>();
  sub->add_option("TO", args->to, "user NAME, UID (all digits), or g:GID for a group");
  sub->add_option("PATH", args->path, "the file to send");
  sub->add_option("--group", args->group, "send to this group instead of TO");
  sub->add_option("--text", args->text, "a caption sent with the file");
  sub->add_option("--name", args->name, "the name receivers see (default: PATH's base name)");
  sub->add_option("--mime", args->mime, "the MIME type (default: guessed from the name)");
  sub->add_flag("--p2p", args->p2p,
                "send the bytes straight to the (online) user over a P2P connection; falls "
                "back to the stored upload when none can be made or it breaks");
  sub->add_option("--p2p-timeout-ms", args->p2p_timeout_ms,
                  "how long --p2p tries for a direct connection")
      ->envname("IMBUS_P2P_TIMEOUT_MS")
      ->check(CLI::Range(0, 60000));
  sub->add_flag("--quiet,-q", args->quiet, "no progress bar");
  AddSessionOptions(sub, &args->session);
  sub->footer(
      "\nThe upload resumes where it stopped after a lost connection. The receiver gets a "
      "file message and fetches it with `imbus get-file ID`; with --p2p the receiver runs "
      "`imbus chat` (it saves direct files into its --dir).");
  return {sub, [&g, args] {
            // `send-file --group 5 PATH`: the one positional is the path.
            if (args->group && !args->to.empty() && args->path.empty()) {
              std::swap(args->to, args->path);
            }
            if (args->path.empty()) throw UsageError("send-file needs PATH");
            return RunSendFile(g, *args);
          }};
}

Command AddGetFile(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("get-file", "Download a file you may see (sent to you)");
  auto args = std::make_shared<GetFileArgs>();
  sub->add_option("ID", args->id, "the file id (from the file message)")->required();
  sub->add_option("-o,--output", args->out,
                  "where to save it (a directory: its name there); default: its name here, "
                  "NAME.1 ... when taken");
  sub->add_flag("--quiet,-q", args->quiet, "no progress bar");
  AddSessionOptions(sub, &args->session);
  sub->footer(
      "\nBytes go to PATH.part first; an interrupted download resumes from it. The sha256 "
      "is checked before the file gets its name.");
  return {sub, [&g, args] { return RunGetFile(g, *args); }};
}

}  // namespace imbus::client::cli

// `imbus online`, `imbus peer`: the PRESENCE service. Both log in first
// (cli_session.h).
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/cli_session.h"
#include "client/presence_api.h"

namespace imbus::client::cli {

namespace {

struct WhoArgs {
  SessionArgs session;
  std::string who;
};

int RunOnline(const GlobalOptions& g, const WhoArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  uint64_t uid = 0;
  if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
  Result<bool> r = IsOnline(client, uid);
  if (!r.ok()) return ReportFailure("online", r.code, r.error);
  std::cout << a.who << " (uid " << uid << ") is " << (r.value ? "online" : "offline") << "\n";
  return kExitOk;
}

int RunPeer(const GlobalOptions& g, const WhoArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  uint64_t uid = 0;
  if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
  Result<PeerInfo> r = PeerAddr(client, uid);
  if (!r.ok()) return ReportFailure("peer", r.code, r.error);
  if (!r.value.online) {
    std::cout << a.who << " (uid " << uid << ") is offline\n";
    return kExitOk;
  }
  std::cout << a.who << " (uid " << uid << ") is online, ticket " << r.value.ticket << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const PeerAddress& p : r.value.addrs) {
    rows.push_back({p.kind, p.host, std::to_string(p.port)});
  }
  PrintTable({"KIND", "HOST", "PORT"}, rows);
  return kExitOk;
}

}  // namespace

Command AddOnline(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("online", "Is a user online?");
  auto args = std::make_shared<WhoArgs>();
  sub->add_option("WHO", args->who, "UID (all digits) or NAME")->required();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunOnline(g, *args); }};
}

Command AddPeer(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "peer", "A user's P2P addresses and a ticket (the user is told you are dialing)");
  auto args = std::make_shared<WhoArgs>();
  sub->add_option("WHO", args->who, "UID (all digits) or NAME")->required();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunPeer(g, *args); }};
}

}  // namespace imbus::client::cli

// imbus: the command line client. One-shot commands against an edge; see
// `imbus --help`. Exit codes: 0 ok, 1 the server answered an error, 2 usage,
// 3 cannot connect / connection lost.
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli.h"

int main(int argc, char** argv) {
  using namespace imbus::client::cli;
  CLI::App app{"imbus: command line client for the imbus IM service"};
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too
  GlobalOptions g;
  app.add_option("--server", g.server, "edge address HOST:PORT")
      ->envname("IMBUS_SERVER")
      ->capture_default_str();
  app.add_option("--timeout-ms", g.timeout_ms, "connect and per-request timeout")
      ->envname("IMBUS_TIMEOUT_MS")
      ->check(CLI::Range(1, 3600 * 1000))
      ->capture_default_str();
  app.add_option("--device", g.device, "device name for login (server default: \"default\")")
      ->envname("IMBUS_DEVICE");
  app.add_flag("--tls", g.tls, "connect over TLS (the edge's --tls-listen port)")
      ->envname("IMBUS_TLS");
  app.add_option("--ca-file", g.ca_file,
                 "with --tls: PEM file of trusted CAs (default: the system store)")
      ->envname("IMBUS_CA_FILE");
  app.add_option("--server-name", g.server_name,
                 "with --tls: name or IP the certificate must match (default: the host of "
                 "--server)")
      ->envname("IMBUS_SERVER_NAME");

  const std::vector<Command> commands = {
      AddRegister(app, g), AddLogin(app, g),   AddPing(app, g),  AddRoute(app, g),
      AddHello(app, g),    AddUsers(app, g),   AddUser(app, g),  AddFriends(app, g),
      AddGroups(app, g),   AddOnline(app, g),  AddPeer(app, g),  AddSend(app, g),
      AddSync(app, g),     AddHistory(app, g), AddConvs(app, g), AddChat(app, g),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError with exit code 0; everything else is a usage error.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    for (const Command& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const UsageError& e) {
    std::cerr << "imbus: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "imbus: " << e.what() << "\n";
    return kExitServerError;
  }
  return kExitUsage;
}

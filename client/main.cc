// imbus: the command line client. One-shot commands against an edge; see
// `imbus --help`. Exit codes: 0 ok, 1 the server answered an error, 2 usage,
// 3 cannot connect / connection lost.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli.h"

namespace {

// `imbus --user NAME COMMAND ...` as well as `imbus COMMAND ... --user NAME`: --user
// and --password are options of the commands, so when they come before the command
// they are moved behind it (the commands fall through to them). Values of the
// global options before the command are skipped, so `--server chat` is no command.
std::vector<std::string> SessionOptionsLast(int argc, char** argv) {
  static const char* kWithValue[] = {"--server", "--timeout-ms", "--device", "--ca-file",
                                     "--server-name"};
  std::vector<std::string> head, moved, tail;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--user" || arg == "--password") && i + 1 < argc) {
      moved.push_back(arg);
      moved.push_back(argv[++i]);
      continue;
    }
    if (arg.rfind("--user=", 0) == 0 || arg.rfind("--password=", 0) == 0) {
      moved.push_back(arg);
      continue;
    }
    head.push_back(arg);
    if (arg.empty() || arg[0] != '-') break;  // the command
    for (const char* opt : kWithValue) {
      if (arg == opt && i + 1 < argc) head.push_back(argv[++i]);
    }
  }
  for (++i; i < argc; ++i) tail.push_back(argv[i]);
  std::vector<std::string> out{argv[0]};
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), tail.begin(), tail.end());
  out.insert(out.end(), moved.begin(), moved.end());
  return out;
}

}  // namespace

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
      AddSendFile(app, g), AddGetFile(app, g),
  };

  try {
    const std::vector<std::string> args = SessionOptionsLast(argc, argv);
    std::vector<const char*> ptrs;
    for (const std::string& a : args) ptrs.push_back(a.c_str());
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
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

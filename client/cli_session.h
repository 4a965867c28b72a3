// Internal to the `imbus` binary. Logging in for commands that need a session
// (directory, presence, msg): with --user/--password (IMBUS_USER/IMBUS_PASSWORD), or
// by RESUMEing the token saved by `imbus login --save`.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/cli.h"

namespace imbus::client::cli {

struct SessionArgs {
  std::optional<std::string> user;
  std::optional<std::string> password;
};

// Adds --user and --password (with their env twins) to a subcommand.
void AddSessionOptions(CLI::App* sub, SessionArgs* args);

// The path `imbus login --save` writes the token to: $XDG_CONFIG_HOME/imbus/token,
// default ~/.config/imbus/token. Empty when neither variable is set.
std::string TokenPath();

// Connects `client` and logs it in: with args.user (password from args.password, or
// prompted) when given, else with the saved token. Returns kExitOk, or prints why
// not and returns the exit code (kExitUsage when there is no way to log in).
int LoginForCommand(const GlobalOptions& g, const SessionArgs& args, Client* client);

// UID|NAME argument of a command: all digits is a uid, anything else a name looked
// up with GET_USER. Returns kExitOk and sets *uid, or prints why not (NOT_FOUND...)
// and returns the exit code.
int ResolveUser(Client& client, const std::string& arg, uint64_t* uid);

// Prints rows as left-aligned columns under a header line.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

}  // namespace imbus::client::cli

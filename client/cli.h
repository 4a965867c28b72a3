// Internal to the `imbus` binary. The command line client's shared pieces: global
// options, exit codes, and one Add* function per subcommand. Each Add* declares the
// subcommand and its flags on the app and returns the function that runs it once
// parsing succeeded; adding a subcommand is one more Add* in its own cli_*.cc file
// and one line in main.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "client/client.h"

namespace imbus::client::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;  // the server answered an error code
inline constexpr int kExitUsage = 2;        // bad flags or arguments
inline constexpr int kExitConnect = 3;      // cannot connect, or the connection failed

struct GlobalOptions {
  std::string server = "127.0.0.1:7000";
  int timeout_ms = 5000;
  std::string device;       // empty: the server's "default"
  bool tls = false;         // connect to the edge's TLS listener
  std::string ca_file;      // trusted CAs (PEM); empty: the system store
  std::string server_name;  // certificate name to check; empty: the host of --server
};

// Thrown by a runner for a usage problem found after parsing (exit 2).
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process exit code
};

// Globals are read when the runner runs, i.e. after parsing: capture by reference.
Command AddRegister(CLI::App& app, const GlobalOptions& g);
Command AddLogin(CLI::App& app, const GlobalOptions& g);
Command AddPing(CLI::App& app, const GlobalOptions& g);
Command AddRoute(CLI::App& app, const GlobalOptions& g);
Command AddHello(CLI::App& app, const GlobalOptions& g);
// Directory and presence (cli_directory.cc, cli_presence.cc).
Command AddUsers(CLI::App& app, const GlobalOptions& g);
Command AddUser(CLI::App& app, const GlobalOptions& g);
Command AddFriends(CLI::App& app, const GlobalOptions& g);
Command AddGroups(CLI::App& app, const GlobalOptions& g);
Command AddOnline(CLI::App& app, const GlobalOptions& g);
Command AddPeer(CLI::App& app, const GlobalOptions& g);
Command AddSend(CLI::App& app, const GlobalOptions& g);
Command AddSync(CLI::App& app, const GlobalOptions& g);
Command AddHistory(CLI::App& app, const GlobalOptions& g);
Command AddConvs(CLI::App& app, const GlobalOptions& g);
Command AddChat(CLI::App& app, const GlobalOptions& g);      // cli_chat.cc
Command AddSendFile(CLI::App& app, const GlobalOptions& g);  // cli_file.cc
Command AddGetFile(CLI::App& app, const GlobalOptions& g);

// Helpers for runners.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
// "HOST:PORT" or "[V6]:PORT"; nullopt when malformed.
std::optional<Endpoint> ParseServer(std::string_view text);

// Connects `client` to g.server (over TLS with --tls). Returns kExitOk, or prints why
// not and returns kExitUsage (bad --server, unreadable --ca-file) or kExitConnect
// (including a failed certificate check).
int ConnectClient(const GlobalOptions& g, Client* client);

// Prints "imbus: <what> failed: CODE: error" to stderr and returns the exit code for
// it: kExitConnect for timeouts and lost connections, else kExitServerError.
int ReportFailure(std::string_view what, int code, std::string_view error);

// The password from --password / IMBUS_PASSWORD when given, else prompted on the
// terminal without echo, else the first line of stdin when it is not a terminal.
// Throws UsageError when none can be had.
std::string ObtainPassword(const std::optional<std::string>& flag, std::string_view prompt);

}  // namespace imbus::client::cli

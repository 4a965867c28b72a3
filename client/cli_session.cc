#include "client/cli_session.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "client/directory_api.h"

namespace imbus::client::cli {

void AddSessionOptions(CLI::App* sub, SessionArgs* args) {
  sub->add_option("--user", args->user,
                  "log in as this user name; else use the token saved by `imbus login --save`")
      ->envname("IMBUS_USER");
  sub->add_option("--password", args->password,
                  "password for --user; else prompted, or read from stdin when piped")
      ->envname("IMBUS_PASSWORD");
}

std::string TokenPath() {
  // Same place as SaveToken in cli_auth.cc.
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/imbus/token";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.config/imbus/token";
  }
  return {};
}

int LoginForCommand(const GlobalOptions& g, const SessionArgs& args, Client* client) {
  std::string token;
  std::string password;
  if (args.user) {
    if (args.user->empty()) throw UsageError("--user must not be empty");
    password = ObtainPassword(args.password, "Password for " + *args.user + ": ");
  } else {
    const std::string path = TokenPath();
    std::ifstream in(path);
    if (path.empty() || !in || !std::getline(in, token) || token.empty()) {
      throw UsageError(
          "not logged in: give --user NAME (and --password), set IMBUS_USER, or run "
          "`imbus login NAME --save` first");
    }
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  }
  if (int rc = ConnectClient(g, client); rc != kExitOk) return rc;
  if (args.user) {
    Result<Session> r = client->Login(*args.user, password, g.device);
    if (!r.ok()) return ReportFailure("login", r.code, r.error);
  } else {
    Result<Session> r = client->Resume(token, g.device);
    if (!r.ok()) {
      std::cerr << "imbus: the saved token no longer works; log in again with `imbus login "
                   "NAME --save` or give --user\n";
      return ReportFailure("resume", r.code, r.error);
    }
  }
  return kExitOk;
}

int ResolveUser(Client& client, const std::string& arg, uint64_t* uid) {
  if (arg.empty()) throw UsageError("empty user: give a UID or a NAME");
  if (std::all_of(arg.begin(), arg.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    try {
      *uid = std::stoull(arg);
    } catch (const std::exception&) {
      throw UsageError("uid '" + arg + "' is out of range");
    }
    return kExitOk;
  }
  Result<UserInfo> r = GetUserByName(client, arg);
  if (!r.ok()) return ReportFailure("looking up user '" + arg + "'", r.code, r.error);
  *uid = r.value.uid;
  return kExitOk;
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  };
  print(header);
  for (const auto& row : rows) print(row);
}

}  // namespace imbus::client::cli

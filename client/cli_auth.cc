// `imbus register`, `imbus login`: the AUTH service.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "net/unique_fd.h"

namespace imbus::client::cli {

namespace {

struct RegisterArgs {
  std::string name;
  std::optional<std::string> password;
};

struct LoginArgs {
  std::string name;
  std::optional<uint64_t> uid;
  std::optional<std::string> password;
  bool save = false;
};

// Writes the token to $XDG_CONFIG_HOME/imbus/token (default ~/.config/imbus/token),
// readable by the owner only. Returns the path, or throws with the reason.
std::string SaveToken(const std::string& token) {
  std::string base;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    base = std::string(home) + "/.config";
  } else {
    throw std::runtime_error("cannot save the token: neither XDG_CONFIG_HOME nor HOME is set");
  }
  const std::string dir = base + "/imbus";
  for (const std::string& d : {base, dir}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create " + d + ": " + std::strerror(errno));
    }
  }
  const std::string path = dir + "/token";
  net::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  fchmod(fd.get(), 0600);  // an older file may have had looser permissions
  const std::string line = token + "\n";
  if (write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
  return path;
}

int RunRegister(const GlobalOptions& g, const RegisterArgs& a) {
  std::string password = ObtainPassword(a.password, "Password for " + a.name + ": ");
  Client client;
  if (int rc = ConnectClient(g, &client); rc != kExitOk) return rc;
  Result<uint64_t> r = client.Register(a.name, password);
  if (!r.ok()) return ReportFailure("register", r.code, r.error);
  std::cout << "registered " << a.name << " as uid " << r.value << "\n";
  return kExitOk;
}

int RunLogin(const GlobalOptions& g, const LoginArgs& a) {
  if (a.name.empty() == !a.uid) throw UsageError("login needs exactly one of NAME or --uid");
  LoginRequest request;
  request.name = a.name;
  request.uid = a.uid.value_or(0);
  request.device = g.device;
  const std::string who = a.uid ? "uid " + std::to_string(*a.uid) : a.name;
  request.password = ObtainPassword(a.password, "Password for " + who + ": ");
  Client client;
  if (int rc = ConnectClient(g, &client); rc != kExitOk) return rc;
  Result<Session> r = client.Login(request);
  if (!r.ok()) return ReportFailure("login", r.code, r.error);
  std::cout << "logged in as " << r.value.name << " (uid " << r.value.uid << "), token "
            << r.value.token << "\n";
  if (a.save) {
    try {
      std::cout << "token saved to " << SaveToken(r.value.token) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "imbus: " << e.what() << "\n";
      return kExitServerError;
    }
  }
  return kExitOk;
}

}  // namespace

Command AddRegister(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("register", "Create an account");
  auto args = std::make_shared<RegisterArgs>();
  sub->add_option("NAME", args->name, "user name: 1-32 of [A-Za-z0-9_.-]")->required();
  sub->add_option("--password", args->password,
                  "password (6-128 bytes); else prompted, or read from stdin when piped")
      ->envname("IMBUS_PASSWORD");
  return {sub, [&g, args] { return RunRegister(g, *args); }};
}

Command AddLogin(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("login", "Log in and print the session token");
  auto args = std::make_shared<LoginArgs>();
  sub->add_option("NAME", args->name, "user name (or give --uid)");
  sub->add_option("--uid", args->uid, "log in by numeric uid instead of NAME");
  sub->add_option("--password", args->password,
                  "password; else prompted, or read from stdin when piped")
      ->envname("IMBUS_PASSWORD");
  sub->add_flag("--save", args->save, "store the token in ~/.config/imbus/token (mode 0600)");
  return {sub, [&g, args] { return RunLogin(g, *args); }};
}

}  // namespace imbus::client::cli

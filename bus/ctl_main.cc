// imbus-ctl: the operator's tool. Talks to the broker over the bus (STATS and
// ADMIN messages, docs/bus.md) as a peer that never announces itself; with CURVE on
// it needs a key the broker lists in --curve-admin-keys (or the broker's own).
// docs/operations.md shows it in use.
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bus/curve.h"
#include "bus/curve_flags.h"
#include "bus/stats_query.h"
#include "codec/bus.h"
#include "codec/codes.h"

namespace {

using imbus::bus::CurveClientKeys;
namespace codec = imbus::codec;

std::vector<std::string> SplitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string e; std::getline(ss, e, ',');) {
    if (!e.empty()) out.push_back(e);
  }
  return out;
}

// STATS from the first broker of the list that answers (the active one of a pair).
bool Stats(const std::vector<std::string>& brokers, std::chrono::milliseconds timeout,
           const CurveClientKeys* curve, codec::StatsMeta* stats, std::string* from) {
  std::string errors;
  for (const std::string& b : brokers) {
    std::string error;
    if (imbus::bus::QueryStats(b, timeout, stats, &error, curve)) {
      // A passive broker answers STATS too, with empty tables: prefer the active one.
      if (stats->ha_state == "passive" || stats->ha_state == "backup") {
        errors += "  " + b + ": " + stats->ha_state + "\n";
        continue;
      }
      *from = b;
      return true;
    }
    errors += "  " + error + "\n";
  }
  std::fprintf(stderr, "imbus-ctl: no active broker answered:\n%s", errors.c_str());
  return false;
}

// The count per service; with `each`, a line per worker too.
void PrintWorkers(const codec::StatsMeta& stats, bool each) {
  std::map<std::string, int> per_service;
  for (const auto& w : stats.workers) {
    for (const auto& s : w.services) ++per_service[s];
  }
  std::printf("workers per service:");
  for (const auto& [service, n] : per_service) std::printf("  %s %d", service.c_str(), n);
  std::printf("\n");
  if (!each) return;
  for (const auto& w : stats.workers) {
    std::string services;
    for (const auto& s : w.services) services += (services.empty() ? "" : ",") + s;
    std::printf("worker  %s  %s  outstanding %u  served %llu\n", w.id.c_str(), services.c_str(),
                w.outstanding, static_cast<unsigned long long>(w.served));
  }
}

// One ADMIN command to the first broker that serves it. Exit code: 0 done, 1 refused
// or no broker, 3 nothing to do (NOT_FOUND: no such session / not drained).
int Admin(const std::vector<std::string>& brokers, std::chrono::milliseconds timeout,
          const CurveClientKeys* curve, const std::string& command, const std::string& arg,
          const char* count_what) {
  std::string errors;
  for (const std::string& b : brokers) {
    codec::AdminReplyMeta reply;
    std::string error;
    if (!imbus::bus::AdminCall(b, timeout, {command, arg}, &reply, &error, curve)) {
      errors += "  " + error + "\n";
      continue;
    }
    if (reply.code == static_cast<int>(codec::Code::kUnavailable)) {  // passive: try the other
      errors += "  " + b + ": " + reply.error + "\n";
      continue;
    }
    if (reply.code != 0) {
      std::fprintf(stderr, "imbus-ctl: %s: %s (%s)\n", command.c_str(), reply.error.c_str(),
                   codec::CodeName(reply.code));
      return reply.code == static_cast<int>(codec::Code::kNotFound) ? 3 : 1;
    }
    std::printf("%s: %llu %s%s%s\n", command.c_str(), static_cast<unsigned long long>(reply.count),
                count_what, reply.error.empty() ? "" : "; ", reply.error.c_str());
    return 0;
  }
  std::fprintf(stderr, "imbus-ctl: no active broker served %s:\n%s", command.c_str(),
               errors.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string broker = "tcp://127.0.0.1:5555";
  int timeout_ms = 3000;
  imbus::bus::CurvePeerFlags curve_flags;
  std::string user, text, edge;

  CLI::App app{
      "imbus-ctl: operate a running imbus (talks to the broker over the bus).\n"
      "With CURVE on, give the broker's public key and a secret key the broker lists in "
      "--curve-admin-keys; or only the broker's own secret (then its public key is the "
      "server key)."};
  app.add_option("--broker", broker,
                 "broker ROUTER endpoint; a pair as two, comma-separated (the active one is "
                 "used)")
      ->envname("IMBUS_BROKER")
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "how long to wait for each broker's answer")
      ->capture_default_str()
      ->check(CLI::Range(100, 600000));
  imbus::bus::AddCurvePeerFlags(app, &curve_flags);
  app.require_subcommand(1);
  CLI::App* status = app.add_subcommand(
      "status",
      "the broker(s), edges with their load (and DRAINED), workers per service, sessions");
  CLI::App* workers = app.add_subcommand("workers", "every worker: services, outstanding, served");
  CLI::App* kick = app.add_subcommand(
      "kick", "close every session of a user: AUTH/KICKED push, then the connection closes");
  kick->add_option("USER", user, "a uid, or the user's name")->required();
  CLI::App* broadcast =
      app.add_subcommand("broadcast", "a system message (SYS/NOTICE push) to every online session");
  broadcast->add_option("TEXT", text, "the message (UTF-8, at most 4000 bytes)")->required();
  CLI::App* drain = app.add_subcommand(
      "drain",
      "stop handing EDGE out in SYS/ROUTE and tell its sessions (SYS/RECONNECT push) to move to "
      "the least loaded edge in service");
  drain->add_option("EDGE", edge, "the edge's name (--name; see status)")->required();
  CLI::App* undrain =
      app.add_subcommand("undrain", "hand EDGE out in SYS/ROUTE again (after its upgrade)");
  undrain->add_option("EDGE", edge, "the edge's name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  CurveClientKeys curve;
  std::string error;
  if (curve_flags.server_key.empty()) {
    // Only a secret: the broker's own (the operator on a broker's machine, e.g. inside
    // its container), so the server key is its public key.
    if (!imbus::bus::ResolveCurveSecret(curve_flags.secret_file, &curve.secret_key, &error) ||
        (!curve.secret_key.empty() &&
         !imbus::bus::CurvePublicFromSecret(curve.secret_key, &curve.public_key, &error))) {
      std::fprintf(stderr, "imbus-ctl: %s\n", error.c_str());
      return 2;
    }
    curve.server_public_key = curve.public_key;
  } else if (!imbus::bus::ResolveCurveClientKeys(curve_flags.server_key, curve_flags.secret_file,
                                                 &curve, &error)) {
    std::fprintf(stderr, "imbus-ctl: %s\n", error.c_str());
    return 2;
  }
  const CurveClientKeys* keys = curve.enabled() ? &curve : nullptr;
  const std::vector<std::string> brokers = SplitEndpoints(broker);
  if (brokers.empty()) {
    std::fprintf(stderr, "imbus-ctl: --broker is empty\n");
    return 2;
  }
  const std::chrono::milliseconds timeout(timeout_ms);

  if (*status || *workers) {
    codec::StatsMeta stats;
    std::string from;
    if (!Stats(brokers, timeout, keys, &stats, &from)) return 1;
    if (*workers) {
      PrintWorkers(stats, true);
      return 0;
    }
    for (const std::string& b : brokers) {
      std::printf("broker  %s%s\n", b.c_str(), b == from ? "  (answered)" : "");
    }
    std::fputs(imbus::bus::FormatStats(stats).c_str(), stdout);  // a line per worker
    PrintWorkers(stats, false);
    return 0;
  }
  if (*kick) return Admin(brokers, timeout, keys, "kick", user, "sessions kicked");
  if (*broadcast) return Admin(brokers, timeout, keys, "broadcast", text, "sessions reached");
  if (*drain) return Admin(brokers, timeout, keys, "drain", edge, "sessions told to reconnect");
  if (*undrain) return Admin(brokers, timeout, keys, "undrain", edge, "");
  return 2;
}

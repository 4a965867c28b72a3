// `imbus ping`, `imbus route`, `imbus hello`: the SYS service.
#include <cstdio>
#include <ctime>
#include <iostream>

#include "client/cli.h"

namespace imbus::client::cli {

namespace {

// 1700000000123 -> "2023-11-14T22:13:20.123Z".
std::string FormatTs(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

int RunPing(const GlobalOptions& g) {
  Client client;
  if (int rc = ConnectClient(g, &client); rc != kExitOk) return rc;
  Result<PingInfo> r = client.Ping();
  if (!r.ok()) return ReportFailure("ping", r.code, r.error);
  std::printf("pong from %s: rtt %.3f ms, server ts %lld (%s)\n", g.server.c_str(),
              static_cast<double>(r.value.rtt.count()) / 1000.0,
              static_cast<long long>(r.value.server_ts), FormatTs(r.value.server_ts).c_str());
  return kExitOk;
}

int RunRoute(const GlobalOptions& g) {
  Client client;
  if (int rc = ConnectClient(g, &client); rc != kExitOk) return rc;
  Result<RouteInfo> r = client.Route();
  if (!r.ok()) return ReportFailure("route", r.code, r.error);
  std::cout << "edge " << r.value.host << ":" << r.value.port << "\n";
  std::cout << "edges (" << r.value.edges.size() << "):\n";
  for (const EdgeInfo& e : r.value.edges) {
    std::cout << "  " << e.host << ":" << e.port << "  load " << e.load << "\n";
  }
  return kExitOk;
}

int RunHello(const GlobalOptions& g) {
  Client client;
  if (int rc = ConnectClient(g, &client); rc != kExitOk) return rc;
  Result<ServerInfo> r = client.Hello("imbus-cli");
  if (!r.ok()) return ReportFailure("hello", r.code, r.error);
  std::cout << "server " << r.value.server << " version " << r.value.version << ", max_frame "
            << r.value.max_frame << ", idle_timeout_s " << r.value.idle_timeout_s << "\n";
  return kExitOk;
}

}  // namespace

Command AddPing(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("ping", "Measure the round trip to the server");
  return {sub, [&g] { return RunPing(g); }};
}

Command AddRoute(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("route", "Show the least-loaded edge and all edges");
  return {sub, [&g] { return RunRoute(g); }};
}

Command AddHello(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("hello", "Show the server's name, version and limits");
  return {sub, [&g] { return RunHello(g); }};
}

}  // namespace imbus::client::cli

// imbus-bench: an event-driven load generator for an imbus edge (client protocol,
// epoll, non-blocking sockets, one thread). See bench/README.md.
#include <sys/resource.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"

namespace {

using imbus::bench::BenchOptions;

// Raises the soft fd limit to the hard one; returns the resulting soft limit.
rlim_t RaiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

void AddCommon(CLI::App* sub, BenchOptions* o, std::string* json) {
  sub->add_option("--server", o->server, "edge HOST:PORT (IPv4)")->envname("IMBUS_SERVER");
  sub->add_option("--duration-s", o->duration_s, "how long the measured phase runs");
  sub->add_option("--setup-timeout-s", o->setup_timeout_s,
                  "give up setting up connections after this");
  sub->add_option("--parallel", o->parallel, "connections being set up (connect, login) at once");
  sub->add_option("--source-ips", o->source_ips,
                  "spread connections over 127.0.0.2..127.0.0.(1+N) (loopback servers; 0: off)");
  sub->add_option("--ping-interval-s", o->ping_interval_s,
                  "keepalive PING interval (0: the server's idle_timeout_s / 3)");
  sub->add_option("--run", o->run, "run id: users are bench_<run>_<tag><i> (default: random)");
  sub->add_flag(
      "--reuse-users", o->reuse_users,
      "log existing users in (REGISTER only those that are missing); run id defaults to 'r'");
  sub->add_option("--json", *json, "also write the results as JSON to this file");
  sub->add_flag("--tls", o->tls, "connect to the edge's TLS listener (--server is its port)")
      ->envname("IMBUS_TLS");
  sub->add_flag("--ws", o->ws,
                "connect over WebSocket, one frame per message (--server is the edge's "
                "--ws-listen port; with --tls, its --wss-listen port)");
  sub->add_option("--ca-file", o->ca_file, "with --tls: trusted CAs, PEM (default: system store)")
      ->envname("IMBUS_CA_FILE");
  sub->add_flag("--insecure", o->insecure,
                "with --tls: do not check the server's certificate (throwaway certificates)");
}

void AddMessaging(CLI::App* sub, BenchOptions* o, std::vector<std::string>* cpu_specs) {
  sub->add_option("--rate", o->rate, "open loop: messages/s in total (0: closed loop)");
  sub->add_option("--window", o->window, "closed loop: messages in flight per sender");
  sub->add_option("--text-bytes", o->text_bytes, "message text size")->check(CLI::Range(1, 8192));
  sub->add_option("--drain-s", o->drain_s, "after sending: wait this long for late answers/pushes");
  sub->add_option("--seed", o->seed, "random seed for recipients");
  sub->add_option("--deadline-ms", o->deadline_ms,
                  "acks within this many ms of the (scheduled) send count as in deadline");
  sub->add_option("--cpu-pid", *cpu_specs,
                  "NAME=PID (repeatable): report that process's CPU (utime+stime) over the send "
                  "phase per acked message, as cpu_us_per_msg_NAME");
}

// Parses the --cpu-pid NAME=PID specs into o->cpu_pids; false (with `error`) on a bad one.
bool ParseCpuPids(const std::vector<std::string>& specs, BenchOptions* o, std::string* error) {
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    int pid = 0;
    if (eq == 0 || eq == std::string::npos ||
        std::from_chars(spec.data() + eq + 1, spec.data() + spec.size(), pid).ec != std::errc() ||
        pid <= 0) {
      *error = "--cpu-pid wants NAME=PID, not '" + spec + "'";
      return false;
    }
    o->cpu_pids.emplace_back(spec.substr(0, eq), pid);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  std::string json;
  std::vector<std::string> cpu_specs;
  CLI::App app{"imbus-bench: load generator for an imbus edge (client protocol over TCP)"};
  app.require_subcommand(1);
  CLI::App* connect = app.add_subcommand(
      "connect", "open --connections connections, register+login each, hold them with PINGs");
  AddCommon(connect, &o, &json);
  connect->add_option("--connections", o.connections, "connections (one user each)");
  connect->add_option("--edge-pid", o.edge_pid, "edge process id: report its RSS per connection");
  CLI::App* login = app.add_subcommand("login", "closed-loop AUTH/LOGIN throughput");
  AddCommon(login, &o, &json);
  login->add_option("--concurrency", o.concurrency, "connections each looping on LOGIN");
  CLI::App* chat = app.add_subcommand("chat", "direct messages between --users online users");
  AddCommon(chat, &o, &json);
  AddMessaging(chat, &o, &cpu_specs);
  chat->add_option("--users", o.users, "online users; each sends to random others");
  chat->add_option("--contacts", o.contacts,
                   "each user sends only to K fixed contacts (picked from --seed and its index "
                   "among the online users), so most SENDs hit an existing conversation; "
                   "0 (default): random recipients, mostly new conversations");
  CLI::App* group = app.add_subcommand("group", "fan-out: --senders post to a group of --members");
  AddCommon(group, &o, &json);
  AddMessaging(group, &o, &cpu_specs);
  group->add_option("--members", o.members, "group members (all online)");
  group->add_option("--senders", o.senders, "members that post");
  CLI::App* steady = app.add_subcommand(
      "steady",
      "outage drills: --rate PRESENCE/IS_ONLINE requests/s over --connections held "
      "users; SIGUSR1 closes --leavers of them; reports gaps and STATUS pushes");
  AddCommon(steady, &o, &json);
  steady->add_option("--connections", o.connections, "users logged in (one connection each)");
  steady->add_option("--rate", o.rate, "requests/s in total")->check(CLI::Range(1.0, 1e7));
  steady->add_option("--drain-s", o.drain_s, "after sending: wait this long for late answers");
  steady->add_flag("--friends", o.friends,
                   "each user befriends the next (a ring): STATUS pushes become visible");
  steady->add_option("--leavers", o.leavers,
                     "on SIGUSR1, close this many connections (no two of them friends)");
  CLI::App* file = app.add_subcommand(
      "file",
      "one client uploads a --file-mb MB file (chunks one at a time) and downloads it "
      "(--download-window DOWNLOADs in flight): MB/s and server CPU per MB; --loop: "
      "uploads only, back to back, for --duration-s");
  AddCommon(file, &o, &json);
  file->add_option("--file-mb", o.file_mb, "file size in MB (MiB)")->check(CLI::Range(0.0, 256.0));
  file->add_option("--download-window", o.download_window, "DOWNLOAD requests in flight");
  file->add_option("--chunk-bytes", o.chunk_bytes, "bytes asked per DOWNLOAD (the server's chunk)")
      ->check(CLI::Range(1, 65536));
  file->add_flag("--loop", o.loop, "upload files back to back until --duration-s has passed");
  file->add_option("--cpu-pid", cpu_specs,
                   "NAME=PID (repeatable): that process's CPU (utime+stime) per MB moved");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  if (!imbus::bench::ParseServer(o.server, &o.server_addr, &error) ||
      !ParseCpuPids(cpu_specs, &o, &error)) {
    std::fprintf(stderr, "imbus-bench: %s\n", error.c_str());
    return 2;
  }
  if (o.tls) {
    imbus::client::TlsConfig tls;
    tls.ca_file = o.ca_file;
    tls.verify = !o.insecure;
    o.tls_ctx = imbus::client::TlsClientContext::Create(tls, &error);
    if (!o.tls_ctx) {
      std::fprintf(stderr, "imbus-bench: --tls: %s\n", error.c_str());
      return 2;
    }
  }
  if (o.run.empty()) {
    if (o.reuse_users) {
      o.run = "r";
    } else {
      char buf[16];
      std::snprintf(
          buf, sizeof(buf), "%06llx",
          static_cast<unsigned long long>(std::time(nullptr) ^ (::getpid() << 8)) & 0xffffffull);
      o.run = buf;
    }
  }
  const rlim_t fd_limit = RaiseFdLimit();
  std::string scenario = app.get_subcommands().front()->get_name();
  if (scenario == "steady" && o.rate <= 0) o.rate = 300;
  const size_t wanted = scenario == "connect" || scenario == "steady" ? o.connections
                        : scenario == "login"                         ? o.concurrency
                        : scenario == "chat"                          ? o.users
                        : scenario == "file"                          ? 1
                                                                      : o.members;
  if (fd_limit != RLIM_INFINITY && wanted + 64 > fd_limit) {
    std::fprintf(stderr,
                 "imbus-bench: %zu connections need more file descriptors than the hard limit "
                 "(%llu); raise it (ulimit -Hn, as root) first\n",
                 wanted, static_cast<unsigned long long>(fd_limit));
    return 2;
  }
  constexpr const char* kCostNote =
      "login/register figures assume the bench deployment's low password-hash cost "
      "(imbus-actor --pwhash-ops 1 --pwhash-mem 8192); the interactive default is far slower";
  std::fprintf(stderr, "imbus-bench %s against %s (run %s, fd limit %llu)\nnote: %s\n",
               scenario.c_str(), o.server.c_str(), o.run.c_str(),
               static_cast<unsigned long long>(fd_limit), kCostNote);

  imbus::bench::Report report(scenario);
  report.Note(kCostNote);
  report.SetText("server", o.server);
  report.SetText("run", o.run);
  report.SetText("transport", std::string(o.ws ? "websocket over " : "") +
                                  (o.tls ? (o.insecure ? "tls (unverified)" : "tls") : "tcp"));
  int rc = 2;
  try {
    if (scenario == "connect") rc = imbus::bench::RunConnect(o, &report);
    if (scenario == "login") rc = imbus::bench::RunLogin(o, &report);
    if (scenario == "chat") rc = imbus::bench::RunChat(o, &report);
    if (scenario == "group") rc = imbus::bench::RunGroup(o, &report);
    if (scenario == "steady") rc = imbus::bench::RunSteady(o, &report);
    if (scenario == "file") rc = imbus::bench::RunFile(o, &report);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imbus-bench: %s\n", e.what());
    return 2;
  }
  report.Set("exit_code", static_cast<int64_t>(rc));
  report.Print(stdout);
  if (!json.empty() && !report.WriteJson(json, &error)) {
    std::fprintf(stderr, "imbus-bench: %s\n", error.c_str());
    return 2;
  }
  return rc;
}

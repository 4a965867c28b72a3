// bench_store_floor: the floor under the message path. MariaDB alone, fed multi-row
// INSERTs into today's `messages` table (made by the actors' own migrations in a
// scratch database, so the keys are the real ones) with the server's durability as
// it runs, one commit per --rows-per-commit rows. Reports rows/s and the CPU time
// (utime+stime from /proc) of mysqld and of this client per row: what the full
// path (imbus-bench chat with --cpu-pid) is measured against. See bench/README.md.
//
//   bench_store_floor --db-socket /tmp/imbus-dev-db/mysqld.sock [--rows 262144]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "actors/db/db.h"
#include "actors/db/schema.h"
#include "net/process_stats.h"

namespace {

using imbus::actors::Db;
using imbus::actors::DbParam;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Variable(Db* db, const std::string& name) {
  auto r = db->Query("SELECT CAST(@@" + name + " AS CHAR)");
  if (r.rows.empty() || r.rows[0].IsNull(0)) return "-";
  return r.rows[0].Str(0).value_or("-");
}

struct Row {
  std::string conv;
  uint64_t seq = 0;
  uint64_t sender = 0;
  std::string cmid;
};

}  // namespace

int main(int argc, char** argv) {
  imbus::actors::DbConfig config;
  int mysqld_pid = 0;
  size_t rows = 262144;
  size_t per_statement = 256;
  size_t per_commit = 256;
  size_t users = 1000;
  size_t convs = 4000;
  size_t text_bytes = 32;
  size_t warmup = 8192;
  bool keep = false;
  CLI::App app{"bench_store_floor: MariaDB alone, multi-row INSERTs into the messages table"};
  app.add_option("--db-socket", config.socket, "MariaDB unix socket")
      ->required()
      ->envname("IMBUS_DB_SOCKET");
  app.add_option("--db-user", config.user, "MariaDB user");
  app.add_option("--db-password", config.password, "MariaDB password")
      ->envname("IMBUS_DB_PASSWORD");
  app.add_option("--mysqld-pid", mysqld_pid, "the server's pid (default: read from @@pid_file)");
  app.add_option("--rows", rows, "rows to insert in the measured phase");
  app.add_option("--rows-per-statement", per_statement,
                 "rows in one INSERT (today's path: up to 64)");
  app.add_option("--rows-per-commit", per_commit, "rows per transaction (a multiple of the above)");
  app.add_option("--users", users, "senders; conversations are pairs of them");
  app.add_option("--convs", convs, "direct conversations the rows are spread over");
  app.add_option("--text-bytes", text_bytes, "message text size");
  app.add_option("--warmup", warmup, "rows inserted before the measured phase");
  app.add_flag("--keep", keep, "keep the scratch database");
  CLI11_PARSE(app, argc, argv);
  per_statement = std::max<size_t>(per_statement, 1);
  per_commit = std::max(per_commit / per_statement, size_t{1}) * per_statement;

  config.database = "imbus_store_floor_" + std::to_string(::getpid());
  try {
    Db db(config);
    imbus::actors::PrepareDatabase(&db);  // the actors' migrations: the real tables and keys
    if (mysqld_pid <= 0) {
      std::ifstream f(Variable(&db, "pid_file"));
      f >> mysqld_pid;
    }
    if (mysqld_pid <= 0 || imbus::net::ProcessCpuUs(mysqld_pid) < 0) {
      std::fprintf(stderr, "bench_store_floor: cannot read mysqld's CPU time; pass --mysqld-pid\n");
      return 2;
    }

    // Direct conversations "d:<lo>:<hi>" between random pairs of users; each row
    // goes to a random one, and a statement's rows are sorted by (conv, seq) as
    // MsgStore writes them.
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<uint64_t> pick_user(1, users);
    std::vector<std::pair<uint64_t, uint64_t>> pairs;
    while (pairs.size() < convs) {
      uint64_t a = pick_user(rng), b = pick_user(rng);
      if (a == b) continue;
      pairs.emplace_back(std::min(a, b), std::max(a, b));
    }
    std::vector<std::string> conv_ids;
    for (const auto& [lo, hi] : pairs)
      conv_ids.push_back("d:" + std::to_string(lo) + ":" + std::to_string(hi));
    std::map<std::string, uint64_t> last_seq;
    std::uniform_int_distribution<size_t> pick_conv(0, convs - 1);
    const std::string text(text_bytes, 'x');
    const std::string sql = [&] {
      std::string s = "INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text) VALUES ";
      for (size_t i = 0; i < per_statement; ++i) s += i ? ",(?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?)";
      return s;
    }();
    uint64_t next_cmid = 0;
    std::vector<Row> batch(per_statement);
    auto insert = [&](size_t n) {
      size_t done = 0;
      while (done < n) {
        db.Begin();
        for (size_t in_commit = 0; in_commit < per_commit; in_commit += per_statement) {
          for (Row& r : batch) {
            const size_t c = pick_conv(rng);
            r.conv = conv_ids[c];
            r.sender = (rng() & 1) ? pairs[c].first : pairs[c].second;
            r.cmid = "floor-" + std::to_string(next_cmid++);
          }
          std::sort(batch.begin(), batch.end(),
                    [](const Row& x, const Row& y) { return x.conv < y.conv; });
          const auto ts = static_cast<int64_t>(NowUs() / 1000);
          std::vector<DbParam> params;
          params.reserve(per_statement * 7);
          for (Row& r : batch) {
            r.seq = ++last_seq[r.conv];
            params.emplace_back(std::string_view(r.conv));
            params.emplace_back(r.seq);
            params.emplace_back(r.sender);
            params.emplace_back(std::string_view(r.cmid));
            params.emplace_back(ts);
            params.emplace_back(uint64_t{0});
            params.emplace_back(std::string_view(text));
          }
          db.Query(sql, params);
        }
        db.Commit();
        done += per_commit;
      }
      return done;
    };

    insert(warmup);
    const int64_t server0 = imbus::net::ProcessCpuUs(mysqld_pid),
                  client0 = imbus::net::ProcessCpuUs(::getpid()), t0 = NowUs();
    const size_t inserted = insert(rows);
    const int64_t server1 = imbus::net::ProcessCpuUs(mysqld_pid),
                  client1 = imbus::net::ProcessCpuUs(::getpid()), t1 = NowUs();
    const double seconds = static_cast<double>(t1 - t0) / 1e6;
    const auto per_row = [&](int64_t us) {
      return static_cast<double>(us) / static_cast<double>(inserted);
    };
    std::printf("store_floor_rows: %zu\n", inserted);
    std::printf("store_floor_rows_per_statement: %zu\n", per_statement);
    std::printf("store_floor_rows_per_commit: %zu\n", per_commit);
    std::printf("store_floor_convs: %zu\n", convs);
    std::printf("store_floor_text_bytes: %zu\n", text_bytes);
    std::printf("store_floor_flush_log_at_trx_commit: %s\n",
                Variable(&db, "innodb_flush_log_at_trx_commit").c_str());
    std::printf("store_floor_sync_binlog: %s\n", Variable(&db, "sync_binlog").c_str());
    std::printf("store_floor_log_bin: %s\n", Variable(&db, "log_bin").c_str());
    std::printf("store_floor_seconds: %.2f\n", seconds);
    std::printf("store_floor_rows_per_s: %.0f\n", static_cast<double>(inserted) / seconds);
    std::printf("store_floor_mysqld_cpu_us_per_row: %.2f\n", per_row(server1 - server0));
    std::printf("store_floor_client_cpu_us_per_row: %.2f\n", per_row(client1 - client0));
    std::printf("store_floor_commits_per_s: %.0f\n",
                static_cast<double>(inserted / per_commit) / seconds);
    if (!keep) db.Exec("DROP DATABASE " + config.database);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_store_floor: %s\n", e.what());
    return 1;
  }
  return 0;
}

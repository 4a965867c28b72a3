// BM_ListUsers: MariaDbDirectoryStore::ListUsers (the block-indexed page lookup
// behind DIRECTORY/LIST_USERS) for page 1 and page 5,000 (size 20) over 100,000
// users, against BM_ListUsersOffset, the plain `LIMIT offset, 20` scan it replaces.
// Needs a running MariaDB: its unix socket in IMBUS_BENCH_DB_SOCKET (user root, no
// password; scripts/bench and scripts/up start a private one). Makes a database of
// its own in it, named bench_directory_<pid>, and drops it at exit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "actors/db/schema.h"
#include "actors/directory/mariadb_directory_store.h"

namespace {

using imbus::actors::Db;
using imbus::actors::MariaDbDirectoryStore;

constexpr int64_t kPageSize = 20;

Db* g_made = nullptr;  // the database, once made

// One database with 100,000 live users, made on first use.
Db& BenchDb() {
  static std::unique_ptr<Db> db = [] {
    const char* socket = std::getenv("IMBUS_BENCH_DB_SOCKET");
    if (socket == nullptr || *socket == '\0') {
      std::fprintf(stderr, "bench_directory: set IMBUS_BENCH_DB_SOCKET to a MariaDB socket\n");
      std::exit(2);
    }
    imbus::actors::DbConfig c;
    c.socket = socket;
    c.user = "root";
    c.database = "bench_directory_" + std::to_string(::getpid());
    auto d = std::make_unique<Db>(c);
    imbus::actors::PrepareDatabase(d.get());
    d->Exec("INSERT INTO users (name, pwhash) SELECT CONCAT('u', seq), 'x' FROM seq_1_to_100000");
    g_made = d.get();
    return d;
  }();
  return *db;
}

void BM_ListUsers(benchmark::State& state) {
  MariaDbDirectoryStore store(&BenchDb());
  const uint64_t offset = static_cast<uint64_t>((state.range(0) - 1) * kPageSize);
  for (auto _ : state) {
    auto page = store.ListUsers(offset, kPageSize);
    if (page.users.size() != kPageSize) state.SkipWithError("short page");
    benchmark::DoNotOptimize(page);
  }
}

void BM_ListUsersOffset(benchmark::State& state) {
  Db& db = BenchDb();
  const uint64_t offset = static_cast<uint64_t>((state.range(0) - 1) * kPageSize);
  for (auto _ : state) {
    auto r = db.Query(
        "SELECT uid, name FROM users WHERE deleted_at IS NULL ORDER BY uid LIMIT ?, 20", {offset});
    if (r.rows.size() != kPageSize) state.SkipWithError("short page");
    benchmark::DoNotOptimize(r);
  }
}

// 5,000 pages of 20: page 5,000 is the last.
BENCHMARK(BM_ListUsers)->Arg(1)->Arg(2500)->Arg(5000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ListUsersOffset)->Arg(1)->Arg(2500)->Arg(5000)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_made != nullptr) g_made->Exec("DROP DATABASE IF EXISTS " + g_made->config().database);
  return 0;
}

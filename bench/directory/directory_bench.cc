// BM_ListUsers: MariaDbDirectoryStore::ListUsers (the block-indexed page lookup
// behind DIRECTORY/LIST_USERS) for page 1 and page 5,000 (size 20) over 100,000
// users, against BM_ListUsersOffset, the plain `LIMIT offset, 20` scan it replaces.
// Runs its own MariaDB (test/support/mariadb.h) or IMBUS_TEST_DB_SOCKET.
#include <benchmark/benchmark.h>

#include <memory>

#include "actors/db/schema.h"
#include "actors/directory/mariadb_directory_store.h"
#include "test/support/mariadb.h"

namespace {

using imbus::actors::Db;
using imbus::actors::MariaDbDirectoryStore;

constexpr int64_t kPageSize = 20;

// One database with 100,000 live users, made on first use.
Db& BenchDb() {
  static std::unique_ptr<Db> db = [] {
    const imbus::testing::DbConfig& shared = imbus::testing::SharedMariaDb();
    imbus::actors::DbConfig c;
    c.socket = shared.socket;
    c.host = shared.host;
    c.port = shared.port;
    c.user = shared.user;
    c.password = shared.password;
    c.database = imbus::testing::NewDatabaseName("bench");
    auto d = std::make_unique<Db>(c);
    imbus::actors::PrepareDatabase(d.get());
    d->Exec("INSERT INTO users (name, pwhash) SELECT CONCAT('u', seq), 'x' FROM seq_1_to_100000");
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

BENCHMARK_MAIN();

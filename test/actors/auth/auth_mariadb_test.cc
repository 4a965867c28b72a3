// AUTH logic against MariaDbAuthStore on the private test MariaDB, plus the schema
// and Db layer.
#include <mysqld_error.h>

#include <chrono>
#include <thread>

#include "actors/auth/mariadb_auth_store.h"
#include "actors/db/schema.h"
#include "actors/db/transaction.h"
#include "test/actors/auth/auth_cases.h"
#include "test/support/actors_db_config.h"
#include "test/support/mariadb.h"
#include "test/support/old_schema.h"

namespace imbus::actors::testing {
namespace {

DbConfig TestDbConfig(const std::string& prefix) {
  return imbus::testing::ActorsDbConfig(imbus::testing::NewDatabaseName(prefix));
}

// The Db behind the store of the current test (one test at a time).
std::unique_ptr<Db>& CurrentDb() {
  static std::unique_ptr<Db> db;
  return db;
}

std::unique_ptr<AuthStore> MakeMariaDbStore() {
  CurrentDb() = std::make_unique<Db>(TestDbConfig("auth"));
  PrepareDatabase(CurrentDb().get());
  return std::make_unique<MariaDbAuthStore>(CurrentDb().get());
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(MariaDb, AuthCasesTest,
                         ::testing::Values(StoreFactory{"mariadb", MakeMariaDbStore}),
                         [](const auto& p) { return p.param.name; });

TEST(SchemaTest, AppliedTwiceIsIdempotent) {
  Db db(TestDbConfig("schema"));
  const int latest = Migrations().back().version;
  EXPECT_EQ(PrepareDatabase(&db), latest);
  EXPECT_EQ(PrepareDatabase(&db), latest);
  Db other(db.config());
  EXPECT_EQ(ApplySchema(&other), latest);
  DbResult r = db.Query("SELECT COUNT(*) FROM schema_version");
  EXPECT_EQ(r.rows.at(0).Uint(0), static_cast<uint64_t>(Migrations().size()));
  // The tables are there and usable.
  MariaDbAuthStore store(&db);
  EXPECT_TRUE(store.CreateUser("zed", "hash").has_value());
}

// An actor whose migration was aborted while it held the lease (on Galera, by a
// concurrent DDL), and whose release was aborted too, starts over as the same holder:
// it takes its own unexpired lease back at once instead of waiting out the 300 s every
// other actor waits (the compose Galera stack once stalled there). It then releases it.
TEST(SchemaTest, TheSameHolderTakesItsOwnLeaseBack) {
  Db db(TestDbConfig("lease"));
  PrepareDatabase(&db);
  const std::string holder = NewSchemaLeaseHolder();
  db.Query("UPDATE schema_lock SET holder = ?, expires_at = NOW(3) + INTERVAL 300 SECOND",
           {std::string_view(holder)});
  db.Exec(
      "DELETE FROM schema_version WHERE version = (SELECT v FROM"
      " (SELECT MAX(version) AS v FROM schema_version) AS latest)");
  // Were it refused, ApplySchema would wait for the expiry and fail.
  EXPECT_EQ(ApplySchema(&db, holder), Migrations().back().version);
  DbResult r = db.Query("SELECT holder FROM schema_lock WHERE id = 1");
  EXPECT_EQ(r.rows.at(0).Str(0), "") << "released after the migrations";
  EXPECT_NE(NewSchemaLeaseHolder(), holder) << "another call is another holder";
}

// A database made before migration 4 (case-insensitive ascii names, many tokens per
// device) is upgraded in place: names keep their spelling and match exactly, stay
// unique ignoring case, a non-ASCII name is simply not found, and each device keeps
// its longest-lived token.
TEST(SchemaTest, Migration4UpgradesAnExistingDatabase) {
  Db db(TestDbConfig("schema4"));
  db.Connect(/*select_database=*/false);
  db.Exec("CREATE DATABASE " + QuoteDatabaseName(db.config().database) +
          " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
  db.Disconnect();
  db.Connect(/*select_database=*/true);
  imbus::testing::ApplyMigrationsUpTo(&db, 3);
  db.Exec("INSERT INTO users (name, pwhash) VALUES ('Alice', 'h1'), ('bob', 'h2')");
  db.Exec(
      "INSERT INTO tokens (token_hash, uid, device, expires_at_ms) VALUES"
      " (UNHEX(SHA2('a', 256)), 1, 'phone', 10), (UNHEX(SHA2('b', 256)), 1, 'phone', 30),"
      " (UNHEX(SHA2('c', 256)), 1, 'phone', 20), (UNHEX(SHA2('d', 256)), 1, 'laptop', 5)");
  MariaDbAuthStore store(&db);
  EXPECT_TRUE(store.FindUserByName("alice").has_value()) << "before: case-insensitive";

  EXPECT_EQ(ApplySchema(&db), Migrations().back().version);
  ASSERT_TRUE(store.FindUserByName("Alice").has_value());
  EXPECT_EQ(store.FindUserByName("Alice")->uid, 1u);
  EXPECT_FALSE(store.FindUserByName("alice").has_value());
  EXPECT_FALSE(store.FindUserByName("Alice ").has_value());
  EXPECT_FALSE(store
                   .FindUserByName("Al\xc3\xaf"
                                   "ce")
                   .has_value());
  EXPECT_FALSE(store.CreateUser("ALICE", "h3").has_value());
  EXPECT_TRUE(store.CreateUser("carol", "h4").has_value());
  DbResult t = db.Query("SELECT device, expires_at_ms FROM tokens WHERE uid = 1 ORDER BY device");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].Str(0), "laptop");
  EXPECT_EQ(t.rows[1].Str(0), "phone");
  EXPECT_EQ(t.rows[1].Int(1), 30);
}

TEST(SchemaTest, MigrationVersionsAreContiguous) {
  int expect = 1;
  for (const Migration& m : Migrations()) EXPECT_EQ(m.version, expect++);
}

TEST(DbTest, TypedParamsRowsAndErrors) {
  Db db(TestDbConfig("db"));
  PrepareDatabase(&db);
  db.Exec("CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, s TEXT, n BIGINT NULL)");
  const std::string big(5000, 'q');  // longer than the first fetch buffer
  db.Query("INSERT INTO t VALUES (?, ?, ?)", {uint64_t{18446744073709551615ull}, big, nullptr});
  db.Query("INSERT INTO t VALUES (?, ?, ?)", {uint64_t{1}, std::string_view("x"), int64_t{-5}});
  DbResult r = db.Query("SELECT id, s, n FROM t ORDER BY id");
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].Uint(0), 1u);
  EXPECT_EQ(r.rows[0].Str(1), "x");
  EXPECT_EQ(r.rows[0].Int(2), -5);
  EXPECT_EQ(r.rows[1].Uint(0), 18446744073709551615ull);
  EXPECT_EQ(r.rows[1].Str(1), big);
  EXPECT_TRUE(r.rows[1].IsNull(2));
  try {
    db.Query("INSERT INTO t VALUES (?, ?, ?)", {uint64_t{1}, std::string_view("dup"), nullptr});
    ADD_FAILURE() << "expected a duplicate key error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.code(), static_cast<unsigned>(ER_DUP_ENTRY));
  }
  // A killed connection is re-opened and the statement retried once.
  DbResult id = db.Query("SELECT CONNECTION_ID()");
  Db killer(db.config());
  killer.Exec("KILL " + std::to_string(id.rows.at(0).Uint(0).value()));
  DbResult again = db.Query("SELECT COUNT(*) FROM t");
  EXPECT_EQ(again.rows.at(0).Uint(0), 2u);
  EXPECT_THROW(QuoteDatabaseName("bad-name"), std::invalid_argument);
}

TEST(DbHostsTest, ParsesHostPortsSocketsAndRejectsNonsense) {
  const std::vector<DbEndpoint> e = ParseDbHosts("db1:3307,db2,/run/a.sock,[::1]:3308");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].host, "db1");
  EXPECT_EQ(e[0].port, 3307);
  EXPECT_EQ(e[1].host, "db2");
  EXPECT_EQ(e[1].port, 3306);
  EXPECT_EQ(e[2].socket, "/run/a.sock");
  EXPECT_EQ(e[3].host, "::1");
  EXPECT_EQ(e[3].port, 3308);
  EXPECT_EQ(e[3].ToString(), "[::1]:3308");
  EXPECT_EQ(e[0].ToString(), "db1:3307");
  for (const char* bad : {"", "a,,b", "a:0", "a:70000", "a:x", ":3306", "[::1"}) {
    EXPECT_THROW(ParseDbHosts(bad), std::invalid_argument) << bad;
  }
}

// With several endpoints, a Db takes the first one that answers; with none, the
// error names each. (Galera health checks: test/drills/galera_test.cc.)
TEST(DbHostsTest, TakesTheFirstEndpointThatAnswers) {
  DbConfig c = TestDbConfig("hosts");
  DbEndpoint gone;
  gone.socket = "/nonexistent/a.sock";
  DbEndpoint shared;
  shared.socket = c.socket;
  c.hosts = {gone, shared};
  Db db(c);
  PrepareDatabase(&db);
  EXPECT_EQ(db.endpoint(), c.socket);
  EXPECT_EQ(db.Query("SELECT 1").rows.at(0).Uint(0), 1u);

  DbEndpoint gone2;
  gone2.socket = "/nonexistent/b.sock";
  c.hosts = {gone, gone2};
  Db none(c);
  try {
    none.Query("SELECT 1");
    ADD_FAILURE() << "expected DbUnavailable";
  } catch (const DbUnavailable& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no healthy database node"), std::string::npos) << what;
    EXPECT_NE(what.find("/nonexistent/b.sock"), std::string::npos) << what;
  }
}

// A transaction whose connection is lost throws and is not replayed on a new
// connection (where its later statements would run outside it): the first part is
// rolled back with the connection.
TEST(DbHostsTest, LostConnectionEndsTheTransaction) {
  Db db(TestDbConfig("txlost"));
  PrepareDatabase(&db);
  db.Exec("CREATE TABLE t (id INT PRIMARY KEY)");
  {
    Transaction tx(&db);
    db.Query("INSERT INTO t VALUES (1)");
    Db killer(db.config());
    killer.Exec("KILL " +
                std::to_string(db.Query("SELECT CONNECTION_ID()").rows.at(0).Uint(0).value()));
    EXPECT_THROW(db.Query("INSERT INTO t VALUES (2)"), DbUnavailable);
    EXPECT_FALSE(db.in_transaction());
  }
  EXPECT_EQ(db.Query("SELECT COUNT(*) FROM t").rows.at(0).Uint(0), 0u);
}

TEST(DbHostsTest, BeginSetsTheIsolationOfItsTransactionOnly) {
  Db db(TestDbConfig("iso"));
  PrepareDatabase(&db);
  auto level = [&db] {
    db.Query("SELECT COUNT(*) FROM schema_version");  // InnoDB starts the trx lazily
    // information_schema.innodb_trx is a cache refreshed at most every 0.1 s.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    DbResult r = db.Query(
        "SELECT trx_isolation_level FROM information_schema.innodb_trx"
        " WHERE trx_mysql_thread_id = CONNECTION_ID()");
    return r.rows.size() == 1 ? r.rows[0].Str(0).value_or("") : std::string("no trx");
  };
  db.Begin(false, Db::Isolation::kReadCommitted);
  EXPECT_EQ(level(), "READ COMMITTED");
  db.Commit();
  db.Begin();
  EXPECT_EQ(level(), "REPEATABLE READ");
  db.Commit();
}

}  // namespace imbus::actors::testing

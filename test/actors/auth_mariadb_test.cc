// AUTH logic against MariaDbAuthStore on the private test MariaDB, plus the schema
// and Db layer.
#include <mysqld_error.h>

#include "actors/auth/mariadb_auth_store.h"
#include "actors/db/schema.h"
#include "test/actors/auth_cases.h"
#include "test/support/mariadb.h"

namespace imbus::actors::testing {
namespace {

DbConfig TestDbConfig(const std::string& prefix) {
  const imbus::testing::DbConfig& shared = imbus::testing::SharedMariaDb();
  DbConfig c;
  c.socket = shared.socket;
  c.host = shared.host;
  c.port = shared.port;
  c.user = shared.user;
  c.password = shared.password;
  c.database = imbus::testing::NewDatabaseName(prefix);
  return c;
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

}  // namespace imbus::actors::testing

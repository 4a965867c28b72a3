// LIST_USERS over 100,000 users through the real stack: page 1 and page 5,000 hold
// exactly the right rows (by uid), also after deleting users. Users are bulk-loaded
// straight into the stack's database with MariaDB's sequence engine.
#include <gtest/gtest.h>

#include "actors/db/db.h"
#include "client/directory_api.h"
#include "test/integration/stack_db.h"
#include "test/integration/stack_util.h"
#include "test/support/mariadb.h"

namespace imbus::testing {
namespace {

constexpr uint64_t kUsers = 100000;

// The uids LIST_USERS page `page` of `size` must show: live users by uid.
std::vector<uint64_t> Expected(actors::Db& db, uint64_t page, uint64_t size) {
  std::vector<uint64_t> out;
  for (const auto& row : db.Query("SELECT uid FROM users WHERE deleted_at IS NULL ORDER BY uid"
                                  " LIMIT ?, ?",
                                  {(page - 1) * size, size})
                             .rows) {
    out.push_back(row.Uint(0).value_or(0));
  }
  return out;
}

std::vector<uint64_t> Got(const client::UserPage& p) {
  std::vector<uint64_t> out;
  for (const auto& u : p.users) out.push_back(u.uid);
  return out;
}

TEST(DirectoryPagingTest, HundredThousandUsers) {
  Stack stack;
  stack.StartBroker();
  stack.StartEdge();
  stack.StartActor("auth,directory");
  ASSERT_TRUE(WaitWorkers(stack, "directory", 1)) << stack.Logs();  // schema applied

  actors::Db db(StackDbConfig(stack));
  db.Exec("INSERT INTO users (name, pwhash) SELECT CONCAT('bulk', seq), 'x' FROM seq_1_to_100000");

  client::Client c = Connected(stack);
  ASSERT_TRUE(c.Register("pager", "password1").ok());
  ASSERT_TRUE(c.Login("pager", "password1").ok());
  const uint64_t total = kUsers + 1;

  auto first = client::ListUsers(c, 1, 20);
  ASSERT_TRUE(first.ok()) << first.Describe();
  EXPECT_EQ(first.value.total, total);
  ASSERT_EQ(first.value.users.size(), 20u);
  EXPECT_EQ(Got(first.value), Expected(db, 1, 20));
  EXPECT_EQ(first.value.users[0].name, "bulk1");

  // Page 5000 of 20: rows 99,981..100,000 in uid order.
  auto far = client::ListUsers(c, 5000, 20);
  ASSERT_TRUE(far.ok()) << far.Describe();
  EXPECT_EQ(far.value.page, 5000u);
  ASSERT_EQ(far.value.users.size(), 20u);
  EXPECT_EQ(Got(far.value), Expected(db, 5000, 20));
  EXPECT_EQ(far.value.users[0].name, "bulk99981");
  EXPECT_EQ(far.value.users[19].name, "bulk100000");
  // The last page holds the one user past 100,000.
  auto last = client::ListUsers(c, 5001, 20);
  ASSERT_EQ(last.value.users.size(), 1u);
  EXPECT_EQ(last.value.users[0].name, "pager");

  // Delete every 10th bulk user and all of one block: pages shift accordingly.
  db.Exec(
      "UPDATE users SET deleted_name = name, name = NULL, deleted_at = NOW(3)"
      " WHERE name LIKE 'bulk%' AND (uid % 10 = 0 OR uid DIV 1024 = 50)");
  const uint64_t live = db.Query("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL")
                            .rows.at(0)
                            .Uint(0)
                            .value_or(0);
  ASSERT_LT(live, total - 10000);
  for (uint64_t page :
       {uint64_t{1}, uint64_t{2000}, uint64_t{2600}, uint64_t{4000}, (live + 19) / 20}) {
    SCOPED_TRACE("page " + std::to_string(page));
    auto r = client::ListUsers(c, page, 20);
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.value.total, live);
    EXPECT_EQ(Got(r.value), Expected(db, page, 20));
  }
  auto gone = client::ListUsers(c, 5000, 20);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone.value.users.empty());  // past the end now
  if (HasFailure()) std::cerr << stack.Logs();
}

}  // namespace
}  // namespace imbus::testing

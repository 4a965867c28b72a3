#include "broker/session_table.h"

#include <gtest/gtest.h>

namespace imbus::broker {
namespace {

codec::SessionInfo Info(uint64_t uid, std::string device) {
  codec::SessionInfo s;
  s.uid = uid;
  s.device = std::move(device);
  return s;
}

TEST(SessionTableTest, SameDeviceDisplacesDifferentDevicesCoexist) {
  SessionTable t;
  EXPECT_TRUE(t.Bind("e1", 1, Info(42, "pc")).empty());
  EXPECT_TRUE(t.Bind("e1", 2, Info(42, "phone")).empty());
  EXPECT_EQ(t.SessionsOf(42).size(), 2u);

  auto displaced = t.Bind("e2", 9, Info(42, "pc"));
  ASSERT_EQ(displaced.size(), 1u);
  EXPECT_EQ(displaced[0].edge, "e1");
  EXPECT_EQ(displaced[0].conn, 1u);
  EXPECT_EQ(t.UidOf("e1", 1), 0u);
  EXPECT_EQ(t.UidOf("e2", 9), 42u);
  EXPECT_EQ(t.size(), 2u);

  // Re-binding the same connection is not a displacement.
  EXPECT_TRUE(t.Bind("e2", 9, Info(42, "pc")).empty());
  EXPECT_EQ(t.size(), 2u);
}

TEST(SessionTableTest, RebindingAConnectionMovesIt) {
  SessionTable t;
  t.Bind("e1", 1, Info(1, "pc"));
  t.Bind("e1", 1, Info(2, "pc"));
  EXPECT_TRUE(t.SessionsOf(1).empty());
  EXPECT_EQ(t.SessionsOf(2).size(), 1u);
  EXPECT_EQ(t.users(), 1u);
}

TEST(SessionTableTest, UnbindIsIdempotent) {
  SessionTable t;
  t.Bind("e1", 1, Info(7, "pc"));
  EXPECT_TRUE(t.Unbind("e1", 1));
  EXPECT_FALSE(t.Unbind("e1", 1));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.users(), 0u);
}

TEST(SessionTableTest, DropEdgeRemovesOnlyThatEdge) {
  SessionTable t;
  t.Bind("e1", 1, Info(1, "a"));
  t.Bind("e1", 2, Info(2, "a"));
  t.Bind("e10", 1, Info(1, "b"));  // a name sharing the prefix must survive
  t.Bind("e2", 3, Info(2, "b"));
  EXPECT_EQ(t.DropEdge("e1"), 2u);
  EXPECT_EQ(t.size(), 2u);
  ASSERT_EQ(t.SessionsOf(1).size(), 1u);
  EXPECT_EQ(t.SessionsOf(1)[0].edge, "e10");
  ASSERT_EQ(t.SessionsOf(2).size(), 1u);
  EXPECT_EQ(t.SessionsOf(2)[0].edge, "e2");
  EXPECT_EQ(t.DropEdge("nobody"), 0u);
}

TEST(SessionTableTest, RemoveUserExceptKeepsTheAsker) {
  SessionTable t;
  t.Bind("e1", 1, Info(5, "a"));
  t.Bind("e1", 2, Info(5, "b"));
  t.Bind("e2", 3, Info(5, "c"));
  t.Bind("e2", 4, Info(6, "a"));
  auto removed = t.RemoveUserExcept(5, "e1", 2);
  EXPECT_EQ(removed.size(), 2u);
  ASSERT_EQ(t.SessionsOf(5).size(), 1u);
  EXPECT_EQ(t.SessionsOf(5)[0].conn, 2u);
  EXPECT_EQ(t.UidOf("e2", 3), 0u);
  EXPECT_EQ(t.SessionsOf(6).size(), 1u);
  // The asker not logged in as that user: everyone goes.
  EXPECT_EQ(t.RemoveUserExcept(5, "e9", 9).size(), 1u);
  EXPECT_EQ(t.size(), 1u);
}

}  // namespace
}  // namespace imbus::broker

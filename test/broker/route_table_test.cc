#include "broker/route_table.h"

#include <gtest/gtest.h>

namespace imbus::broker {
namespace {

TEST(RouteTableTest, SumsLoadOverThreadsOfOneEdge) {
  RouteTable t;
  t.AddThread("a/0", "a", "10.0.0.1", 7000);
  t.AddThread("a/1", "a", "10.0.0.1", 7000);
  t.AddThread("b/0", "b", "10.0.0.2", 7001);
  t.SetLoad("a/0", 5);
  t.SetLoad("a/1", 6);
  t.SetLoad("b/0", 8);
  auto edges = t.Edges();
  ASSERT_EQ(edges.size(), 2u);
  EXPECT_EQ(edges[0].name, "a");
  EXPECT_EQ(edges[0].load, 11u);
  EXPECT_EQ(edges[1].load, 8u);
  auto best = t.LeastLoaded();
  ASSERT_TRUE(best);
  EXPECT_EQ(best->name, "b");
  EXPECT_EQ(best->port, 7001);

  // A new heartbeat replaces the thread's share, it does not add to it.
  t.SetLoad("a/1", 1);
  EXPECT_EQ(t.Edges()[0].load, 6u);
  EXPECT_EQ(t.LeastLoaded()->name, "a");
}

TEST(RouteTableTest, EdgeGoesWithItsLastThread) {
  RouteTable t;
  EXPECT_FALSE(t.LeastLoaded());
  t.AddThread("a/0", "a", "h", 1);
  t.AddThread("a/1", "a", "h", 1);
  t.SetLoad("a/0", 3);
  EXPECT_TRUE(t.RemoveThread("a/0"));
  EXPECT_FALSE(t.RemoveThread("a/0"));
  ASSERT_EQ(t.Edges().size(), 1u);
  EXPECT_EQ(t.Edges()[0].load, 0u);
  ASSERT_NE(t.EdgeOf("a/1"), nullptr);
  EXPECT_EQ(t.EdgeOf("a/1")->name, "a");
  t.RemoveThread("a/1");
  EXPECT_TRUE(t.Edges().empty());
  EXPECT_EQ(t.EdgeOf("a/1"), nullptr);
  t.SetLoad("ghost", 9);  // ignored
  EXPECT_EQ(t.thread_count(), 0u);
}

}  // namespace
}  // namespace imbus::broker

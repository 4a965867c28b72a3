#include "broker/worker_pool.h"

#include <map>

#include <gtest/gtest.h>

#include "codec/route_key.h"

namespace imbus::broker {
namespace {

using Clock = WorkerPool::Clock;
using std::chrono::milliseconds;

WorkerPool::Pending Pend(WorkerPool& pool, const std::string& worker, Clock::time_point deadline,
                         uint64_t conn = 1) {
  WorkerPool::Pending p;
  p.rid = pool.NextRid();
  p.edge = "edge";
  p.worker = worker;
  p.meta.conn = conn;
  p.meta.rid = p.rid;
  p.deadline = deadline;
  return p;
}

TEST(WorkerPoolTest, PicksLeastOutstandingRoundRobinOnTies) {
  WorkerPool pool;
  EXPECT_FALSE(pool.Pick("msg"));
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg", "auth"});
  pool.AddWorker("w3", {"auth"});
  const auto far = Clock::now() + milliseconds(100000);

  std::map<std::string, int> count;
  for (int i = 0; i < 6; ++i) {
    auto w = pool.Pick("msg");
    ASSERT_TRUE(w);
    ++count[*w];
    pool.AddPending(Pend(pool, *w, far));
  }
  EXPECT_EQ(count["w1"], 3);
  EXPECT_EQ(count["w2"], 3);
  EXPECT_EQ(count.count("w3"), 0u);

  // w2 is now the busiest for "auth": w3 gets auth work.
  EXPECT_EQ(*pool.Pick("auth"), "w3");

  // Ties without outstanding work alternate.
  WorkerPool idle;
  idle.AddWorker("a", {"s"});
  idle.AddWorker("b", {"s"});
  std::string first = *idle.Pick("s");
  std::string second = *idle.Pick("s");
  EXPECT_NE(first, second);
}

// A conversation's key stays with one worker while the workers stay the same; when
// one leaves, only its keys move; when one joins, it takes a share and nothing else
// moves; a full owner keeps its keys: they wait for it while others have room.
TEST(WorkerPoolTest, KeyedPicksKeepOwnersAndMoveOnlyWhatMust) {
  WorkerPool pool(100000, 2);
  for (const char* id : {"w1", "w2", "w3"}) pool.AddWorker(id, {"msg"});
  constexpr uint64_t kKeys = 3000;
  std::map<uint64_t, std::string> owner;
  std::map<std::string, int> share;
  for (uint64_t k = 1; k <= kKeys; ++k) {
    owner[k] = *pool.Pick("msg", codec::Mix64(k));
    ++share[owner[k]];
    EXPECT_EQ(*pool.Pick("msg", codec::Mix64(k)), owner[k]);  // stable
  }
  for (const auto& [id, n] : share) EXPECT_GT(n, 800) << id;  // about a third each

  pool.RemoveWorker("w2");
  for (uint64_t k = 1; k <= kKeys; ++k) {
    const std::string now = *pool.Pick("msg", codec::Mix64(k));
    if (owner[k] != "w2") {
      EXPECT_EQ(now, owner[k]) << k;
    }
    EXPECT_NE(now, "w2");
    owner[k] = now;
  }
  pool.AddWorker("w4", {"msg"});
  int moved = 0;
  for (uint64_t k = 1; k <= kKeys; ++k) {
    const std::string now = *pool.Pick("msg", codec::Mix64(k));
    if (now != owner[k]) {
      EXPECT_EQ(now, "w4") << k;
      ++moved;
      owner[k] = now;
    }
  }
  EXPECT_GT(moved, 800);
  EXPECT_LT(moved, 1200);

  // w1 at the bound (max_outstanding 2) still takes its keys while others have
  // room; at twice the bound they wait (nullopt: the queue) while the others have
  // room, and the others' keys still go to their owners. A full owner's keys never
  // go to another worker: two writers of one conversation collide, and each
  // collision stores a batch twice.
  const auto far = Clock::now() + milliseconds(100000);
  std::vector<uint64_t> w1_keys;
  for (uint64_t k = 1; k <= kKeys; ++k) {
    if (owner[k] == "w1") w1_keys.push_back(k);
  }
  ASSERT_FALSE(w1_keys.empty());
  pool.AddPending(Pend(pool, "w1", far));
  pool.AddPending(Pend(pool, "w1", far));
  EXPECT_EQ(*pool.Pick("msg", codec::Mix64(w1_keys[0])), "w1");
  pool.AddPending(Pend(pool, "w1", far));
  pool.AddPending(Pend(pool, "w1", far));
  for (uint64_t k : w1_keys) EXPECT_FALSE(pool.Pick("msg", codec::Mix64(k))) << k;
  for (uint64_t k = 1; k <= kKeys; ++k) {
    if (owner[k] != "w1") {
      EXPECT_EQ(*pool.Pick("msg", codec::Mix64(k)), owner[k]) << k;
    }
  }
  EXPECT_TRUE(pool.Pick("msg"));  // unkeyed: any worker with room
  for (const char* id : {"w3", "w4"}) {
    pool.AddPending(Pend(pool, id, far));
    pool.AddPending(Pend(pool, id, far));
  }
  EXPECT_FALSE(pool.Pick("msg", codec::Mix64(w1_keys[0])));
  EXPECT_FALSE(pool.Pick("msg"));
}

// A full owner's queued keys stay queued, in order, while the requests of owners
// with room behind them go; the walk counts what it hands out; a reply to the full
// owner lets its oldest request go first.
TEST(WorkerPoolTest, QueuedKeysWaitForTheirOwnerWithoutHoldingUpOthers) {
  WorkerPool pool(100000, 2);
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  std::vector<uint64_t> k1, k2;  // route keys owned by w1 and by w2
  for (uint64_t k = 1; k1.size() < 3 || k2.size() < 3; ++k) {
    (*pool.Pick("msg", codec::Mix64(k)) == "w1" ? k1 : k2).push_back(codec::Mix64(k));
  }
  const auto far = Clock::now() + milliseconds(100000);
  std::vector<uint64_t> w1_rids;
  for (int i = 0; i < 4; ++i) {  // w1 at twice the bound: full for its own keys
    WorkerPool::Pending p = Pend(pool, "w1", far);
    w1_rids.push_back(p.rid);
    pool.AddPending(std::move(p));
  }
  // Queue order: w1's k1[0] twice, w2's k2[0], w1's k1[1], w2's k2[1], k2[2], k2[0].
  const std::vector<uint64_t> order = {k1[0], k1[0], k2[0], k1[1], k2[1], k2[2], k2[0]};
  for (size_t i = 0; i < order.size(); ++i) {
    WorkerPool::Queued q;
    q.service = "msg";
    q.deadline = far;
    q.meta.conn = i;
    q.key = order[i];
    ASSERT_TRUE(pool.Enqueue(q));
  }
  EXPECT_TRUE(pool.KeyQueued(k1[0]));
  EXPECT_FALSE(pool.KeyQueued(k1[2]));

  // w2 has room for 2: the first two of its requests go, k1's stay, and the walk
  // ends when no worker has room (at conn 5).
  auto taken = pool.TakeDispatchable("msg");
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].first.meta.conn, 2u);
  EXPECT_EQ(taken[1].first.meta.conn, 4u);
  for (const auto& [q, worker] : taken) EXPECT_EQ(worker, "w2");
  EXPECT_EQ(pool.QueuedFor("msg"), 5u);
  EXPECT_FALSE(pool.KeyQueued(k2[1]));
  EXPECT_TRUE(pool.KeyQueued(k2[0]));  // its second request is still queued
  for (auto& [q, worker] : taken) pool.AddPending(Pend(pool, worker, far));

  // Everyone full: nothing goes.
  EXPECT_TRUE(pool.TakeDispatchable("msg").empty());
  EXPECT_EQ(pool.QueuedFor("msg"), 5u);

  // Replies to w1 until it has room for one: its oldest request goes (k1[0],
  // conn 0), not a later one, and then no worker has room.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.TakePending(w1_rids[i]));
  taken = pool.TakeDispatchable("msg");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].first.meta.conn, 0u);
  EXPECT_EQ(taken[0].second, "w1");
  EXPECT_TRUE(pool.KeyQueued(k1[0]));  // conn 1 still waits

  // What is left is in queue order: conns 1, 3, 5, 6.
  std::vector<uint64_t> left;
  while (auto q = pool.PopQueued("msg")) left.push_back(q->meta.conn);
  EXPECT_EQ(left, (std::vector<uint64_t>{1, 3, 5, 6}));
  EXPECT_FALSE(pool.KeyQueued(k1[0]));
  EXPECT_FALSE(pool.KeyQueued(k2[0]));
}

// A deep backlog of one full owner does not hide the requests of another owner
// queued behind it; when the full owner leaves, its keys' new owner takes them on
// the next walk (the owner each entry remembers is forgotten when workers change).
TEST(WorkerPoolTest, ADeepBacklogHidesNoOtherOwnerAndMovesWhenItsOwnerLeaves) {
  WorkerPool pool(100000, 2);
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  std::vector<uint64_t> k1, k2;
  for (uint64_t k = 1; k1.size() < 3000 || k2.size() < 2; ++k) {
    (*pool.Pick("msg", codec::Mix64(k)) == "w1" ? k1 : k2).push_back(codec::Mix64(k));
  }
  const auto far = Clock::now() + milliseconds(100000);
  for (int i = 0; i < 4; ++i) pool.AddPending(Pend(pool, "w1", far));  // w1 full
  std::vector<uint64_t> w2_rids;
  for (int i = 0; i < 4; ++i) {  // w2 full too, for now
    WorkerPool::Pending p = Pend(pool, "w2", far);
    w2_rids.push_back(p.rid);
    pool.AddPending(std::move(p));
  }
  WorkerPool::Queued q;
  q.service = "msg";
  q.deadline = far;
  for (size_t i = 0; i < 3000; ++i) {
    q.meta.conn = i;
    q.key = k1[i];
    ASSERT_TRUE(pool.Enqueue(q));
  }
  q.meta.conn = 9000;
  q.key = k2[0];
  ASSERT_TRUE(pool.Enqueue(q));
  EXPECT_TRUE(pool.TakeDispatchable("msg").empty());

  for (uint64_t rid : w2_rids) ASSERT_TRUE(pool.TakePending(rid));  // w2 empties
  auto taken = pool.TakeDispatchable("msg");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].first.meta.conn, 9000u);
  EXPECT_EQ(taken[0].second, "w2");
  EXPECT_EQ(pool.QueuedFor("msg"), 3000u);

  // w1 leaves: its keys are w2's now, in queue order, as far as w2 has room (2,
  // then twice that for its own keys: 4).
  pool.RemoveWorker("w1");
  taken = pool.TakeDispatchable("msg");
  ASSERT_EQ(taken.size(), 2u);  // room for 2 while under the bound
  EXPECT_EQ(taken[0].first.meta.conn, 0u);
  EXPECT_EQ(taken[1].first.meta.conn, 1u);
  for (const auto& [t, worker] : taken) EXPECT_EQ(worker, "w2");
}

// An unkeyed request no worker can take ends the walk: requests behind it wait
// too (first come, first served), and expiry forgets queued keys.
TEST(WorkerPoolTest, UnkeyedRequestsKeepTheirPlaceAndExpiryForgetsKeys) {
  WorkerPool pool(100000, 1);
  pool.AddWorker("w1", {"msg"});
  const auto t0 = Clock::now();
  WorkerPool::Pending held = Pend(pool, "w1", t0 + milliseconds(100000));
  const uint64_t held_rid = held.rid;
  pool.AddPending(std::move(held));  // w1 full
  WorkerPool::Queued q;
  q.service = "msg";
  q.deadline = t0 + milliseconds(100000);
  q.meta.conn = 1;
  ASSERT_TRUE(pool.Enqueue(q));  // unkeyed
  q.meta.conn = 2;
  q.key = codec::Mix64(7);
  q.deadline = t0 + milliseconds(10);
  ASSERT_TRUE(pool.Enqueue(q));
  EXPECT_TRUE(pool.TakeDispatchable("msg").empty());
  ASSERT_TRUE(pool.TakePending(held_rid));
  auto taken = pool.TakeDispatchable("msg");
  ASSERT_EQ(taken.size(), 1u);  // room for one: the unkeyed request, first in line
  EXPECT_EQ(taken[0].first.meta.conn, 1u);
  EXPECT_TRUE(pool.KeyQueued(codec::Mix64(7)));
  EXPECT_EQ(pool.TakeExpiredQueued(t0 + milliseconds(20)).size(), 1u);
  EXPECT_FALSE(pool.KeyQueued(codec::Mix64(7)));
  EXPECT_EQ(pool.queued_count(), 0u);
}

// RequestMeta::owner: true only when a key goes to the worker that got its previous
// request; a detour to another worker, or the worker leaving and coming back,
// makes the next request untrusted.
TEST(WorkerPoolTest, NoteKeyedTellsWhetherTheWorkerHadTheKeyLast) {
  WorkerPool pool;
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  EXPECT_FALSE(pool.NoteKeyed(7, "w1"));  // first time: unknown
  EXPECT_TRUE(pool.NoteKeyed(7, "w1"));
  EXPECT_TRUE(pool.NoteKeyed(7, "w1"));
  EXPECT_FALSE(pool.NoteKeyed(7, "w2"));  // a detour
  EXPECT_FALSE(pool.NoteKeyed(7, "w1"));  // back: w2 may have written
  EXPECT_TRUE(pool.NoteKeyed(7, "w1"));
  EXPECT_FALSE(pool.NoteKeyed(8, "w1"));  // keys are separate
  pool.RemoveWorker("w1");
  pool.AddWorker("w1", {"msg"});  // the same id, a new life
  EXPECT_FALSE(pool.NoteKeyed(7, "w1"));
  EXPECT_TRUE(pool.NoteKeyed(7, "w1"));
  EXPECT_FALSE(pool.NoteKeyed(7, "gone"));
}

// Two keys that share a slot of the table: the one that took the slot last is
// remembered; the other is never answered true from the slot's worker alone.
TEST(WorkerPoolTest, NoteKeyedNeverTrustsAKeyWhoseSlotAnotherKeyTook) {
  WorkerPool pool;
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  const uint64_t k = 7;
  const uint64_t j = 7 + WorkerPool::kKeySlots;  // the same slot
  EXPECT_FALSE(pool.NoteKeyed(k, "w1"));
  EXPECT_TRUE(pool.NoteKeyed(k, "w1"));
  EXPECT_FALSE(pool.NoteKeyed(j, "w2"));
  // k's previous request went to w1, so w2 must not be told it owns k, although
  // the slot's last worker is w2.
  EXPECT_FALSE(pool.NoteKeyed(k, "w2"));
  EXPECT_TRUE(pool.NoteKeyed(k, "w2"));
  EXPECT_FALSE(pool.NoteKeyed(j, "w2"));  // j lost its slot to k: asked again
  EXPECT_TRUE(pool.NoteKeyed(j, "w2"));
}

TEST(WorkerPoolTest, RepliesReleaseAndLateRepliesAreUnknown) {
  WorkerPool pool;
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  const auto far = Clock::now() + milliseconds(100000);
  auto p = Pend(pool, "w1", far);
  const uint64_t rid = p.rid;
  pool.AddPending(std::move(p));
  EXPECT_EQ(*pool.Pick("msg"), "w2");
  auto taken = pool.TakePending(rid);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->worker, "w1");
  EXPECT_FALSE(pool.TakePending(rid));
  for (const auto& w : pool.Workers()) {
    EXPECT_EQ(w.outstanding, 0u);
    EXPECT_EQ(w.served, w.id == "w1" ? 1u : 0u);
  }
}

TEST(WorkerPoolTest, RemoveWorkerReturnsItsRequestsInFlight) {
  WorkerPool pool;
  pool.AddWorker("w1", {"msg"});
  pool.AddWorker("w2", {"msg"});
  const auto far = Clock::now() + milliseconds(100000);
  pool.AddPending(Pend(pool, "w1", far, 10));
  pool.AddPending(Pend(pool, "w2", far, 20));
  pool.AddPending(Pend(pool, "w1", far, 30));
  auto held = pool.RemoveWorker("w1");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].meta.conn, 10u);
  EXPECT_EQ(held[1].meta.conn, 30u);
  EXPECT_EQ(pool.pending_count(), 1u);
  EXPECT_FALSE(pool.HasWorker("w1"));
  EXPECT_EQ(*pool.Pick("msg"), "w2");
  pool.RemoveWorker("w2");
  EXPECT_FALSE(pool.Pick("msg"));
}

TEST(WorkerPoolTest, ExpiredRequestsLeaveOnce) {
  WorkerPool pool;
  pool.AddWorker("w", {"msg"});
  const auto t0 = Clock::now();
  auto a = Pend(pool, "w", t0 + milliseconds(10));
  auto b = Pend(pool, "w", t0 + milliseconds(20));
  auto c = Pend(pool, "w", t0 + milliseconds(30));
  const uint64_t rid_b = b.rid;
  pool.AddPending(std::move(a));
  pool.AddPending(std::move(b));
  pool.AddPending(std::move(c));
  ASSERT_TRUE(pool.TakePending(rid_b));  // answered in time
  EXPECT_TRUE(pool.TakeExpired(t0).empty());
  auto expired = pool.TakeExpired(t0 + milliseconds(25));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(pool.TakeExpired(t0 + milliseconds(40)).size(), 1u);
  EXPECT_EQ(pool.pending_count(), 0u);
  EXPECT_EQ(pool.Workers()[0].outstanding, 0u);
}

TEST(WorkerPoolTest, QueueIsBoundedAndExpiresInOrder) {
  WorkerPool pool(2);
  const auto t0 = Clock::now();
  WorkerPool::Queued q;
  q.edge = "e";
  q.service = "msg";
  q.deadline = t0 + milliseconds(10);
  q.meta.conn = 1;
  EXPECT_TRUE(pool.Enqueue(q));
  q.deadline = t0 + milliseconds(20);
  q.meta.conn = 2;
  EXPECT_TRUE(pool.Enqueue(q));
  EXPECT_FALSE(pool.Enqueue(q));  // full
  EXPECT_EQ(pool.queued_count(), 2u);

  auto expired = pool.TakeExpiredQueued(t0 + milliseconds(15));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].meta.conn, 1u);
  auto next = pool.PopQueued("msg");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->meta.conn, 2u);
  EXPECT_FALSE(pool.PopQueued("msg"));
  EXPECT_EQ(pool.queued_count(), 0u);
}

TEST(WorkerPoolTest, FullWorkersAreNotPickedAndTheQueueKnowsItsOldest) {
  WorkerPool pool(100, 2);  // at most 2 outstanding per worker
  pool.AddWorker("w1", {"msg"});
  EXPECT_TRUE(pool.Serves("msg"));
  EXPECT_FALSE(pool.Serves("auth"));
  const auto far = Clock::now() + milliseconds(100000);
  std::vector<uint64_t> rids;
  for (int i = 0; i < 2; ++i) {
    auto w = pool.Pick("msg");
    ASSERT_TRUE(w);
    WorkerPool::Pending p = Pend(pool, *w, far);
    rids.push_back(p.rid);
    pool.AddPending(std::move(p));
  }
  EXPECT_FALSE(pool.Pick("msg")) << "full";
  EXPECT_TRUE(pool.Serves("msg")) << "full, but still serving";

  EXPECT_FALSE(pool.OldestQueuedAt("msg"));
  const auto t0 = Clock::now();
  WorkerPool::Queued q;
  q.service = "msg";
  q.deadline = far;
  q.queued_at = t0;
  ASSERT_TRUE(pool.Enqueue(q));
  q.queued_at = t0 + milliseconds(5);
  ASSERT_TRUE(pool.Enqueue(q));
  EXPECT_EQ(pool.QueuedFor("msg"), 2u);
  EXPECT_EQ(pool.QueuedFor("auth"), 0u);
  EXPECT_EQ(*pool.OldestQueuedAt("msg"), t0);
  EXPECT_EQ(pool.QueuedServices(), std::vector<std::string>{"msg"});

  ASSERT_TRUE(pool.TakePending(rids[1]));  // a reply makes room
  EXPECT_EQ(*pool.Pick("msg"), "w1");
}

}  // namespace
}  // namespace imbus::broker

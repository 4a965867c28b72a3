#include "actors/actor_host.h"

#include "actors/bus_sessions.h"

#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "actors/auth/password_hasher.h"
#include "actors/db/schema.h"
#include "actors/dispatcher.h"
#include "actors/offload_pool.h"
#include "bus/peer.h"

namespace imbus::actors {

ActorHost::ActorHost(Options options, ServiceRegistry registry)
    : options_(std::move(options)), registry_(std::move(registry)) {}

void ActorHost::Start() {
  if (options_.services.empty()) throw std::runtime_error("--services: no service given");
  for (const std::string& name : options_.services) {
    if (registry_.Find(name) == nullptr) {
      const std::string known = fmt::format("{}", fmt::join(registry_.Names(), ", "));
      throw std::runtime_error("--services: unknown service '" + name + "' (known: " + known + ")");
    }
  }
  if (options_.threads < 1) throw std::runtime_error("--threads must be at least 1");
  if (options_.hash_threads < 1) throw std::runtime_error("--hash-threads must be at least 1");
  if (options_.hash_queue < 1) throw std::runtime_error("--hash-queue must be at least 1");
  try {
    QuoteDatabaseName(options_.db.database);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("--db-name: ") + e.what());
  }
  EnsureSodium();
  try {
    PasswordHasher check(options_.service_options.pwhash_ops, options_.service_options.pwhash_mem);
    if (check.below_interactive()) {
      spdlog::warn("low password cost (ops {}, mem {}): for benchmarks/tests only", check.ops(),
                   check.mem());
    }
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("--pwhash-ops/--pwhash-mem: ") + e.what());
  }

  // MariaDB may come up after us (compose): retry until db_wait_s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options_.db_wait_s);
  std::string where;
  for (const DbEndpoint& e : options_.db.Endpoints()) {
    where += (where.empty() ? "" : ",") + e.ToString();
  }
  Db db(options_.db);
  for (int attempt = 1;; ++attempt) {
    try {
      const int version = PrepareDatabase(&db);
      spdlog::info("db: {} database '{}' at schema version {} (via {})", where,
                   options_.db.database, version, db.endpoint());
      return;
    } catch (const DbUnavailable& e) {
      if (std::chrono::steady_clock::now() >= deadline) {
        throw std::runtime_error("cannot reach MariaDB at " + where + " within " +
                                 std::to_string(options_.db_wait_s) + " s: " + e.what());
      }
      spdlog::info("db: waiting for MariaDB at {} (attempt {}): {}", where, attempt, e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    } catch (const DbError& e) {
      throw std::runtime_error("MariaDB at " + where + ": " + e.what());
    }
  }
}

// One worker's state, built on the main thread (so a failure is a startup error)
// and then used only by its worker thread.
struct ActorHost::Worker {
  explicit Worker(OffloadPool* pool) : dispatcher(pool) {}

  int index = 0;
  std::unique_ptr<Db> db;  // stable address: services keep a pointer to it
  // Stable addresses too; the inbox's peer is attached by the worker thread that
  // makes it.
  std::unique_ptr<WorkerInbox> inbox = std::make_unique<WorkerInbox>();
  std::unique_ptr<BusSessions> sessions =
      std::make_unique<BusSessions>(inbox.get(), std::chrono::milliseconds(2000));
  Dispatcher dispatcher;
  uint64_t expired_logged = 0;  // dispatcher.expired() at the last log line
  std::chrono::steady_clock::time_point next_expired_log;
};

void ActorHost::Run(const std::atomic<bool>& stop) {
  // Before the workers: their dispatchers point at it. Its jobs hold nothing of a
  // worker but the shared CompletionQueue, so the order of destruction is free.
  OffloadPool pool(options_.hash_threads, static_cast<size_t>(options_.hash_queue));
  spdlog::info("actor: offload pool of {} threads, up to {} jobs waiting", pool.threads(),
               pool.max_queued());
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options_.threads; ++i) {
    auto w = std::make_unique<Worker>(&pool);
    w->index = i;
    w->db = std::make_unique<Db>(options_.db);
    for (const std::string& name : options_.services) {
      const ServiceRegistry::Entry* e = registry_.Find(name);
      if (e == nullptr) throw std::runtime_error("unknown service '" + name + "'");
      try {
        w->dispatcher.Add(
            codec::ToWire(e->wire),
            e->factory(ServiceContext{w->db.get(), options_.service_options, w->sessions.get()}));
      } catch (const std::exception& ex) {
        throw std::runtime_error("service '" + name + "': " + ex.what());
      }
    }
    workers.push_back(std::move(w));
  }
  // Background work (push delivery): once per process, threads of its own.
  std::vector<std::unique_ptr<BackgroundTask>> tasks;
  for (const std::string& name : options_.services) {
    const ServiceRegistry::Entry* e = registry_.Find(name);
    if (e == nullptr || !e->background) continue;
    try {
      if (auto task = e->background(BackgroundContext{options_.db, options_.service_options})) {
        tasks.push_back(std::move(task));
      }
    } catch (const std::exception& ex) {
      throw std::runtime_error("service '" + name + "': " + ex.what());
    }
  }
  zmq::context_t ctx(1);  // shared by the workers' sockets; outlives them
  std::vector<std::thread> threads;
  for (auto& task : tasks) {
    threads.emplace_back([&stop, t = task.get()] { t->Run(stop); });
  }
  for (auto& w : workers) {
    threads.emplace_back([this, &ctx, &stop, worker = w.get()] { WorkerLoop(ctx, worker, stop); });
  }
  for (auto& t : threads) t.join();
}

// At most one line a second: under overload every batch may hold expired requests.
void ActorHost::NoteExpired(Worker& w) {
  const uint64_t expired = w.dispatcher.expired();
  if (expired == w.expired_logged) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < w.next_expired_log) return;
  spdlog::info("actor worker {}: dropped {} requests past their deadline ({} in all)", w.index,
               expired - w.expired_logged, expired);
  w.expired_logged = expired;
  w.next_expired_log = now + std::chrono::seconds(1);
}

namespace {

// While offloaded work is out, the worker wakes this often to send what finished.
// BusPeer::WaitReadable cannot also wait for the pool; waiting in slices keeps the
// peer's own wait (its socket monitor, reconnect timers) in charge, for at most
// this much delay on a reply after a hash of 50-500 ms.
constexpr int kOffloadSliceMs = 5;

}  // namespace

void ActorHost::WorkerLoop(zmq::context_t& ctx, Worker* w, const std::atomic<bool>& stop) {
  const std::string joined = fmt::format("{}", fmt::join(options_.services, ","));
  bus::BusPeer::Options po;
  po.endpoint = options_.broker;
  po.ready.role = std::string(codec::kRoleWorker);
  po.ready.name = joined;
  po.ready.services = options_.services;
  po.heartbeat_ms = options_.heartbeat_ms;
  // The host name tells containers apart in STATS (inside each, the pid is often 1).
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  po.identity_prefix = std::string(host) + "/" + joined + "/" + std::to_string(w->index);
  po.curve = options_.curve;
  bus::BusPeer peer(ctx, po);
  spdlog::info("actor worker {} ({}) connecting to {} as {}", w->index, joined, options_.broker,
               peer.identity());

  w->inbox->set_peer(&peer);

  // Up to kMaxBatch requests already waiting are taken together, so a batchable
  // command (MSG/SEND) commits many at once; one at a time when traffic is light.
  constexpr size_t kMaxBatch = 256;
  std::vector<bus::BusMessage> batch;
  std::vector<Dispatcher::InRequest> in;
  std::vector<OutMessage> out;
  codec::BatchWriter batch_out;
  bus::BusMessage msg;
  int64_t deferred_ms = -1;  // until the next push a service holds back is due
  while (!stop.load(std::memory_order_relaxed)) {
    int wait_ms = w->dispatcher.offloaded() > 0 ? kOffloadSliceMs : options_.heartbeat_ms;
    if (deferred_ms >= 0 && deferred_ms < wait_ms) wait_ms = static_cast<int>(deferred_ms);
    peer.WaitReadable(wait_ms);
    for (;;) {
      batch.clear();
      while (batch.size() < kMaxBatch && w->inbox->Next(&msg)) {
        if (msg.type == codec::BusType::kRequest) batch.push_back(std::move(msg));
      }
      out.clear();
      if (!batch.empty()) {
        in.clear();
        for (const bus::BusMessage& m : batch) in.push_back({m.meta, m.body});
        w->dispatcher.HandleRequests(in, &out);
        NoteExpired(*w);
      }
      w->dispatcher.TakeFinished(&out);
      deferred_ms = w->dispatcher.TakeDeferred(&out);
      if (batch.empty() && out.empty()) break;
      // The replies and pushes of a batch go as one bus message (when the broker
      // takes batches).
      batch_out.Clear();
      for (const OutMessage& m : out) batch_out.Add(m.type, m.meta, m.body);
      if (!peer.SendBatch(batch_out)) {
        spdlog::warn("actor worker {}: could not queue a message to the broker", w->index);
      }
      peer.Tick(0);
      if (stop.load(std::memory_order_relaxed)) break;
    }
    peer.Tick(0);
  }
  spdlog::info(
      "actor worker {} stopping after {} requests ({} dropped past their deadline, "
      "{} offloaded ones unanswered)",
      w->index, w->dispatcher.handled(), w->dispatcher.expired(), w->dispatcher.offloaded());
}

}  // namespace imbus::actors

#include "broker/worker_pool.h"

#include <algorithm>
#include <functional>

#include "codec/route_key.h"

namespace imbus::broker {

void WorkerPool::AddWorker(const std::string& id, std::vector<std::string> services) {
  ++room_changes_;
  ++workers_gen_;
  if (workers_.count(id) > 0) {
    // Keep its in-flight requests: only the service list changes.
    for (const std::string& s : workers_[id].services) std::erase(by_service_[s].ids, id);
  }
  for (const std::string& s : services) {
    auto& ids = by_service_[s].ids;
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  auto [it, inserted] = workers_.try_emplace(id);
  Worker& w = it->second;
  w.services = std::move(services);
  w.id_hash = codec::Mix64(std::hash<std::string>{}(id));
  if (inserted) w.serial = ++last_serial_;
}

bool WorkerPool::NoteKeyed(uint64_t key, const std::string& worker) {
  auto w = workers_.find(worker);
  if (w == workers_.end()) return false;
  if (key_slots_.empty()) key_slots_.resize(kKeySlots);
  // Route keys are already mixed (codec::SendRouteKey), so their low bits spread.
  KeySlot& slot = key_slots_[key & (kKeySlots - 1)];
  const bool same = slot.key == key && slot.serial == w->second.serial;
  slot = {key, w->second.serial};
  return same;
}

std::vector<WorkerPool::Pending> WorkerPool::RemoveWorker(const std::string& id) {
  ++room_changes_;
  ++workers_gen_;
  std::vector<Pending> held;
  auto it = workers_.find(id);
  if (it == workers_.end()) return held;
  for (const std::string& s : it->second.services) {
    auto svc = by_service_.find(s);
    if (svc == by_service_.end()) continue;
    std::erase(svc->second.ids, id);
    if (svc->second.ids.empty()) by_service_.erase(svc);
  }
  workers_.erase(it);
  // Rare (a worker died): a scan of the requests in flight is fine.
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->second.worker == id) {
      held.push_back(std::move(p->second));
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  std::sort(held.begin(), held.end(),
            [](const Pending& a, const Pending& b) { return a.rid < b.rid; });
  return held;
}

const std::vector<std::string>* WorkerPool::ServicesOf(const std::string& id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second.services;
}

std::optional<std::string> WorkerPool::Pick(std::string_view service, uint64_t key) {
  auto svc = by_service_.find(std::string(service));
  if (svc == by_service_.end()) return std::nullopt;
  return PickIn(svc->second, key);
}

std::optional<std::string> WorkerPool::PickIn(ServiceWorkers& sw, uint64_t key) {
  if (sw.ids.empty()) return std::nullopt;
  if (key != 0) return PickOwner(sw, key);
  const size_t n = sw.ids.size();
  size_t best = n;
  uint32_t best_load = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (sw.next + k) % n;
    const uint32_t load = workers_[sw.ids[i]].outstanding;
    if (max_outstanding_ != 0 && load >= max_outstanding_) continue;
    if (best == n || load < best_load) {
      best = i;
      best_load = load;
    }
  }
  if (best == n) return std::nullopt;  // every one is full
  sw.next = (best + 1) % n;
  return sw.ids[best];
}

std::optional<std::string> WorkerPool::PickOwner(ServiceWorkers& sw, uint64_t key) {
  // Queue only when every worker is full, as for unkeyed requests; while any has
  // room the owner takes its keys up to twice the bound (keys are spread evenly but
  // not exactly: slack for bursts, not a second bound). Past that they wait for it
  // in the queue (see Pick); then waiting is what a hot conversation's one writer
  // costs.
  if (!AnyRoom(sw)) return std::nullopt;
  auto owner = OwnerOf(sw, key);
  if (owner == workers_.end() || OwnerFull(owner->second)) return std::nullopt;
  return owner->first;
}

WorkerPool::WorkerMap::iterator WorkerPool::OwnerOf(const ServiceWorkers& sw, uint64_t key) {
  auto best = workers_.end();
  uint64_t best_score = 0;
  for (const std::string& id : sw.ids) {
    auto w = workers_.find(id);
    if (w == workers_.end()) continue;
    const uint64_t score = codec::Mix64(key ^ w->second.id_hash);
    if (best == workers_.end() || score > best_score) {
      best = w;
      best_score = score;
    }
  }
  return best;
}

bool WorkerPool::OwnerFull(const Worker& w) const {
  return max_outstanding_ != 0 && w.outstanding >= uint64_t{max_outstanding_} * 2;
}

bool WorkerPool::AnyRoom(const ServiceWorkers& sw) const {
  if (max_outstanding_ == 0) return !sw.ids.empty();
  return std::any_of(sw.ids.begin(), sw.ids.end(), [&](const std::string& id) {
    auto w = workers_.find(id);
    return w != workers_.end() && w->second.outstanding < max_outstanding_;
  });
}

bool WorkerPool::HasRoom(std::string_view service) const {
  auto svc = by_service_.find(std::string(service));
  return svc != by_service_.end() && AnyRoom(svc->second);
}

bool WorkerPool::Serves(std::string_view service) const {
  auto svc = by_service_.find(std::string(service));
  return svc != by_service_.end() && !svc->second.ids.empty();
}

void WorkerPool::AddPending(Pending p) {
  auto w = workers_.find(p.worker);
  if (w != workers_.end()) ++w->second.outstanding;
  deadlines_.emplace_back(p.deadline, p.rid);
  const uint64_t rid = p.rid;
  pending_[rid] = std::move(p);
}

void WorkerPool::Release(const std::string& worker, bool served) {
  auto w = workers_.find(worker);
  if (w == workers_.end()) return;
  if (w->second.outstanding > 0) --w->second.outstanding;
  ++room_changes_;
  if (served) ++w->second.served;
}

std::optional<WorkerPool::Pending> WorkerPool::TakePending(uint64_t rid) {
  auto it = pending_.find(rid);
  if (it == pending_.end()) return std::nullopt;
  Pending p = std::move(it->second);
  pending_.erase(it);
  Release(p.worker, true);
  return p;
}

const WorkerPool::Pending* WorkerPool::FindPending(uint64_t rid) const {
  auto it = pending_.find(rid);
  return it == pending_.end() ? nullptr : &it->second;
}

std::vector<WorkerPool::Pending> WorkerPool::TakeExpired(Clock::time_point now) {
  std::vector<Pending> expired;
  while (!deadlines_.empty() && deadlines_.front().first <= now) {
    auto it = pending_.find(deadlines_.front().second);
    deadlines_.pop_front();
    if (it == pending_.end()) continue;  // answered already
    Release(it->second.worker, false);
    expired.push_back(std::move(it->second));
    pending_.erase(it);
  }
  // Keep the index from growing without bound when nothing expires.
  if (pending_.empty()) deadlines_.clear();
  return expired;
}

bool WorkerPool::Enqueue(Queued q) {
  if (queued_ >= max_queued_) return false;
  // A keyed request is queued only when it cannot go now (its owner is full, or an
  // earlier request of its key waits): it gives a walk nothing new to find.
  if (q.key != 0) {
    ++queued_keys_[q.key];
  } else {
    ++room_changes_;
  }
  const std::string service = q.service;
  queue_[service].push_back(std::move(q));
  ++queued_;
  return true;
}

void WorkerPool::ForgetQueuedKey(uint64_t key) {
  if (key == 0) return;
  auto it = queued_keys_.find(key);
  if (it != queued_keys_.end() && --it->second == 0) queued_keys_.erase(it);
}

std::optional<WorkerPool::Queued> WorkerPool::PopQueued(const std::string& service) {
  auto it = queue_.find(service);
  if (it == queue_.end()) return std::nullopt;
  Queued q = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) queue_.erase(it);
  --queued_;
  ForgetQueuedKey(q.key);
  return q;
}

std::vector<std::pair<WorkerPool::Queued, std::string>> WorkerPool::TakeDispatchable(
    const std::string& service) {
  std::vector<std::pair<Queued, std::string>> out;
  auto it = queue_.find(service);
  auto svc = by_service_.find(service);
  if (it == queue_.end() || svc == by_service_.end() || !AnyRoom(svc->second)) return out;
  // Nothing that decides a pick changed since the last walk found nothing more:
  // walking again would skip the same requests (the broker drains every turn).
  if (svc->second.walked_at == room_changes_) return out;
  svc->second.walked_at = room_changes_;
  std::deque<Queued>& q = it->second;
  ServiceWorkers& sw = svc->second;
  // Requests left queued move up over the taken ones: [q.begin(), keep) is kept,
  // [keep, e) are holes. Picks see the requests taken so far as outstanding.
  auto keep = q.begin();
  auto e = q.begin();
  size_t skipped = 0;
  for (; e != q.end(); ++e) {
    std::optional<std::string> worker;
    if (e->key == 0) {
      worker = PickIn(sw, 0);
      if (!worker) break;  // every worker full
    } else {
      // The owner, remembered in the entry while the workers stay the same, so
      // that skipping a full owner's backlog costs a comparison per request.
      if (e->owner_slot == nullptr || e->owner_gen != workers_gen_) {
        auto owner = OwnerOf(sw, e->key);
        e->owner_slot = owner == workers_.end() ? nullptr : &*owner;
        e->owner_gen = workers_gen_;
      }
      auto* owner = static_cast<WorkerMap::value_type*>(e->owner_slot);
      if (owner == nullptr || OwnerFull(owner->second)) {
        if (skipped == kMaxSkipped) break;
        ++skipped;
        if (keep != e) *keep = std::move(*e);
        ++keep;
        continue;
      }
      worker = owner->first;
    }
    ++workers_[*worker].outstanding;
    ForgetQueuedKey(e->key);
    out.emplace_back(std::move(*e), std::move(*worker));
    if (!AnyRoom(sw)) {
      ++e;
      break;  // nothing more can go
    }
  }
  q.erase(keep, e);
  queued_ -= out.size();
  if (q.empty()) queue_.erase(it);
  // The caller records each with AddPending, which counts it.
  for (const auto& [taken, worker] : out) --workers_[worker].outstanding;
  return out;
}

std::vector<WorkerPool::Queued> WorkerPool::TakeExpiredQueued(Clock::time_point now) {
  std::vector<Queued> expired;
  for (auto it = queue_.begin(); it != queue_.end();) {
    auto& q = it->second;
    auto keep = q.begin();
    for (auto e = q.begin(); e != q.end(); ++e) {
      if (e->deadline <= now) {
        ForgetQueuedKey(e->key);
        expired.push_back(std::move(*e));
      } else {
        if (keep != e) *keep = std::move(*e);
        ++keep;
      }
    }
    queued_ -= static_cast<size_t>(q.end() - keep);
    q.erase(keep, q.end());
    it = q.empty() ? queue_.erase(it) : std::next(it);
  }
  return expired;
}

size_t WorkerPool::QueuedFor(const std::string& service) const {
  auto it = queue_.find(service);
  return it == queue_.end() ? 0 : it->second.size();
}

std::optional<WorkerPool::Clock::time_point> WorkerPool::OldestQueuedAt(
    const std::string& service) const {
  auto it = queue_.find(service);
  if (it == queue_.end()) return std::nullopt;
  return it->second.front().queued_at;
}

std::vector<std::string> WorkerPool::QueuedServices() const {
  std::vector<std::string> out;
  out.reserve(queue_.size());
  for (const auto& [service, q] : queue_) out.push_back(service);
  return out;
}

std::vector<WorkerPool::WorkerView> WorkerPool::Workers() const {
  std::vector<WorkerView> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) out.push_back({id, w.services, w.outstanding, w.served});
  return out;
}

}  // namespace imbus::broker

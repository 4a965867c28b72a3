// Internal to the broker. RouteTable: the edges clients can be sent to, for
// SYS/ROUTE and stats. An edge process has one bus peer per thread; its load is the
// sum of the loads its threads report in their heartbeats.
//
// Not thread-safe: owned by the broker loop. Copyable (plain data).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace imbus::broker {

class RouteTable {
 public:
  struct Edge {
    std::string name;
    std::string host;
    uint16_t port = 0;
    uint64_t load = 0;  // summed over the edge's threads
  };

  // Registers one edge thread (peer `identity`) of the edge called `name`. The last
  // announced host/port wins for the edge. Re-adding an identity replaces it.
  void AddThread(const std::string& identity, const std::string& name, const std::string& host,
                 uint16_t port);
  // Sets the load a thread reported; unknown identities are ignored.
  void SetLoad(const std::string& identity, uint32_t load);
  // Forgets a thread; the edge goes when its last thread goes. False if unknown.
  bool RemoveThread(const std::string& identity);

  bool HasThread(const std::string& identity) const { return threads_.count(identity) > 0; }
  // The edge a thread belongs to, or nullptr.
  const Edge* EdgeOf(const std::string& identity) const;

  // Every edge, ordered by name.
  std::vector<Edge> Edges() const;
  // The edge with the least summed load (ties: smallest name) among those not
  // drained (all of them drained: among all), or nullopt if none.
  std::optional<Edge> LeastLoaded() const;

  // Drained edges (by name, kept across their restarts until Undrain): SYS/ROUTE
  // hands them out no more (imbus-ctl drain). Drain of an unknown name is kept too.
  void Drain(const std::string& name) { drained_.insert(name); }
  bool Undrain(const std::string& name) { return drained_.erase(name) > 0; }
  bool IsDrained(const std::string& name) const { return drained_.count(name) > 0; }
  const std::set<std::string>& drained() const { return drained_; }

  size_t thread_count() const { return threads_.size(); }

 private:
  struct Thread {
    std::string name;
    uint32_t load = 0;
  };
  struct EdgeState {
    Edge edge;
    size_t threads = 0;
  };

  std::unordered_map<std::string, Thread> threads_;  // by peer identity
  std::map<std::string, EdgeState> edges_;           // by edge name
  std::set<std::string> drained_;
};

}  // namespace imbus::broker

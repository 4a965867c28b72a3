#include "broker/route_table.h"

namespace imbus::broker {

void RouteTable::AddThread(const std::string& identity, const std::string& name,
                           const std::string& host, uint16_t port) {
  RemoveThread(identity);
  threads_[identity] = Thread{name, 0};
  EdgeState& state = edges_[name];
  state.edge.name = name;
  state.edge.host = host;
  state.edge.port = port;
  ++state.threads;
}

void RouteTable::SetLoad(const std::string& identity, uint32_t load) {
  auto it = threads_.find(identity);
  if (it == threads_.end()) return;
  EdgeState& state = edges_[it->second.name];
  state.edge.load = state.edge.load - it->second.load + load;
  it->second.load = load;
}

bool RouteTable::RemoveThread(const std::string& identity) {
  auto it = threads_.find(identity);
  if (it == threads_.end()) return false;
  auto edge = edges_.find(it->second.name);
  if (edge != edges_.end()) {
    edge->second.edge.load -= it->second.load;
    if (--edge->second.threads == 0) edges_.erase(edge);
  }
  threads_.erase(it);
  return true;
}

const RouteTable::Edge* RouteTable::EdgeOf(const std::string& identity) const {
  auto it = threads_.find(identity);
  if (it == threads_.end()) return nullptr;
  auto edge = edges_.find(it->second.name);
  return edge == edges_.end() ? nullptr : &edge->second.edge;
}

std::vector<RouteTable::Edge> RouteTable::Edges() const {
  std::vector<Edge> out;
  out.reserve(edges_.size());
  for (const auto& [name, state] : edges_) out.push_back(state.edge);
  return out;
}

std::optional<RouteTable::Edge> RouteTable::LeastLoaded() const {
  const Edge* best = nullptr;
  bool best_drained = true;
  for (const auto& [name, state] : edges_) {
    const bool drained = drained_.count(name) > 0;
    // An edge in service beats a drained one; then the lower load.
    if (best == nullptr || (best_drained && !drained) ||
        (drained == best_drained && state.edge.load < best->load)) {
      best = &state.edge;
      best_drained = drained;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace imbus::broker

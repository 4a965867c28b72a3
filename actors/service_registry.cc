#include "actors/service_registry.h"

#include <stdexcept>

namespace imbus::actors {

void ServiceRegistry::Register(std::string name, codec::Service wire, ServiceFactory factory,
                               BackgroundFactory background) {
  const std::string key = name;
  if (!entries_
           .emplace(key, Entry{std::move(name), wire, std::move(factory), std::move(background)})
           .second) {
    throw std::logic_error("service '" + key + "' registered twice");
  }
}

const ServiceRegistry::Entry* ServiceRegistry::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> ServiceRegistry::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

}  // namespace imbus::actors

// Public. ServiceRegistry: service name ("auth") -> wire service and a factory that
// makes one instance per worker thread. BuiltinServices() holds every service this
// binary knows; a new service adds one Register line there (builtin_services.cc).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/db/db.h"
#include "actors/db/db_config.h"
#include "actors/service.h"
#include "actors/sessions.h"
#include "codec/commands.h"

namespace imbus::actors {

// What a factory gets: the worker thread's own Db and the process-wide options.
struct ServiceContext {
  Db* db;  // owned by the worker; outlives the service
  const ServiceOptions& options;
  Sessions* sessions;  // the broker's session table, via this worker's bus socket
};

using ServiceFactory = std::function<std::unique_ptr<Service>(const ServiceContext&)>;

// What a background factory gets: the DB settings (a task opens its own connections)
// and the process-wide options. It may return nullptr (nothing to run, e.g. push
// delivery without a gateway URL).
struct BackgroundContext {
  const DbConfig& db;
  const ServiceOptions& options;
};
using BackgroundFactory = std::function<std::unique_ptr<BackgroundTask>(const BackgroundContext&)>;

class ServiceRegistry {
 public:
  struct Entry {
    std::string name;
    codec::Service wire;
    ServiceFactory factory;
    BackgroundFactory background;  // may be empty
  };

  void Register(std::string name, codec::Service wire, ServiceFactory factory,
                BackgroundFactory background = {});
  const Entry* Find(const std::string& name) const;  // nullptr if unknown
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Entry> entries_;
};

// auth, directory, presence, msg, push and file (`imbus-actor --list-services` prints them).
ServiceRegistry BuiltinServices();

}  // namespace imbus::actors

// Public. PushService: the PUSH service's commands (docs/protocol.md, service 7):
// REGISTER_DEVICE / UNREGISTER_DEVICE of a device token, SETTINGS (preview or not).
// Delivery of the notifications is PushDelivery's (push_delivery.h), which runs on
// threads of its own, apart from the bus workers. One instance per worker thread.
#pragma once

#include <functional>

#include "actors/push/push_store.h"
#include "actors/service.h"

namespace imbus::actors::push {

class PushService : public Service {
 public:
  struct Options {
    std::function<int64_t()> now_ms;  // default: the system clock
  };
  PushService(Db* db, Options options);

 private:
  void RegisterDevice(const Request& req, Reply* reply);
  void UnregisterDevice(const Request& req, Reply* reply);
  void Settings(const Request& req, Reply* reply);

  PushStore store_;
  Options options_;
};

// The (platform, token) of a request, checked: BAD_REQUEST or TOO_LARGE.
Device ParseDevice(const codec::Body& body);

}  // namespace imbus::actors::push

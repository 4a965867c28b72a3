// Public. Dispatcher: turns one bus REQUEST into the bus messages that answer it
// (the request's pushes, then exactly one REPLY), applying the error policy:
// RequestError -> its code; codec::BadField or an unparsable body -> BAD_REQUEST;
// DbUnavailable -> UNAVAILABLE; anything else -> INTERNAL (logged). Never throws.
// No sockets here, so it is tested directly. Owned by one worker thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/service.h"
#include "codec/bus.h"

namespace imbus::actors {

struct OutMessage {
  codec::BusType type;
  std::string meta;
  std::string body;
};

class Dispatcher {
 public:
  void Add(uint16_t wire_service, std::unique_ptr<Service> service);

  // `meta` is the packed RequestMeta. Appends to *out; a request whose meta cannot be
  // read gets no answer (there is no rid to answer to) and is logged.
  void HandleRequest(std::string_view meta, std::string_view body,
                     std::vector<OutMessage>* out);

  // Several requests at once, answered in order; runs of the same batchable command
  // go to Service::HandleBatch together (one commit for many MSG/SENDs).
  struct InRequest {
    std::string_view meta;
    std::string_view body;
  };
  void HandleRequests(const std::vector<InRequest>& requests, std::vector<OutMessage>* out);

  uint64_t handled() const { return handled_; }

 private:
  std::map<uint16_t, std::unique_ptr<Service>> services_;
  uint64_t handled_ = 0;
};

}  // namespace imbus::actors

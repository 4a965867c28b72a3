// Public. Dispatcher: turns one bus REQUEST into the bus messages that answer it
// (the request's pushes, then exactly one REPLY), applying the error policy:
// RequestError -> its code; codec::BadField or an unparsable body -> BAD_REQUEST;
// DbUnavailable -> UNAVAILABLE; anything else -> INTERNAL (logged). Never throws.
// A request past its deadline (RequestMeta::deadline_ms) is answered UNAVAILABLE
// without reaching its service, so without touching the database: checked when the
// request is read and again just before its service runs. No sockets here, so it is tested directly. Owned by one worker thread.
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
  // Requests answered UNAVAILABLE unhandled because their deadline had passed.
  uint64_t expired() const { return expired_; }

  // The wall clock the deadlines are read against (tests move it).
  void set_now_ms(int64_t (*now_ms)()) { now_ms_ = now_ms; }

 private:
  std::map<uint16_t, std::unique_ptr<Service>> services_;
  uint64_t handled_ = 0;
  uint64_t expired_ = 0;
  int64_t (*now_ms_)() = codec::WallNowMs;
};

}  // namespace imbus::actors

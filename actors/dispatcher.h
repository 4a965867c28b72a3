// Public. Dispatcher: turns one bus REQUEST into the bus messages that answer it
// (the request's pushes, then exactly one REPLY). A command the command table marks
// needs_login, sent without a uid, is answered UNAUTHENTICATED without reaching its
// service (LoginMissing in service.h). Then the service's {command -> method} table
// (Service::Handles) picks the method, under the error policy:
// RequestError -> its code; codec::BadField or an unparsable body -> BAD_REQUEST;
// DbUnavailable -> UNAVAILABLE; anything else -> INTERNAL (logged). Never throws.
// A request past its deadline (RequestMeta::deadline_ms) is answered UNAVAILABLE
// without reaching its service, so without touching the database: checked when the
// request is read and again just before its service runs. A request whose service
// offloads work (Offload in service.h) is answered later, by TakeFinished, once the
// OffloadPool has run it; RATE_LIMITED with retry_ms at once when the pool's queue is
// full. No sockets here, so it is tested directly. Owned by one worker thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/completion_queue.h"
#include "actors/offload_pool.h"
#include "actors/service.h"
#include "net/clock.h"
#include "net/log_limiter.h"
#include "codec/body.h"
#include "codec/bus.h"
#include "metrics/metrics.h"

namespace imbus::actors {

struct OutMessage {
  codec::BusType type;
  std::string meta;
  std::string body;
};

class Dispatcher {
 public:
  // `pool`: where offloaded work runs; not owned, outlives this. nullptr: on the
  // calling thread, inside HandleRequest(s) (logic tests).
  explicit Dispatcher(OffloadPool* pool = nullptr);

  void Add(uint16_t wire_service, std::unique_ptr<Service> service);

  // `meta` is the packed RequestMeta. Appends to *out; a request whose meta cannot be
  // read gets no answer (there is no rid to answer to) and is logged.
  void HandleRequest(std::string_view meta, std::string_view body, std::vector<OutMessage>* out);

  // Several requests at once, answered in order; runs of the same batchable command
  // go to Service::HandleBatch together (one commit for many MSG/SENDs).
  struct InRequest {
    std::string_view meta;
    std::string_view body;
  };
  void HandleRequests(const std::vector<InRequest>& requests, std::vector<OutMessage>* out);

  // Appends the pushes and reply of every offloaded request whose work finished.
  // Cheap when none did: the worker calls it on every turn.
  void TakeFinished(std::vector<OutMessage>* out);
  // Appends the pushes services held back that are due now (Service::TakeDeferred);
  // returns the ms until the next one is due, -1 when none waits.
  int64_t TakeDeferred(std::vector<OutMessage>* out);
  // Offloaded requests not answered yet.
  size_t offloaded() const { return offloaded_.size(); }

  uint64_t handled() const { return handled_; }
  // Requests answered UNAVAILABLE unhandled because their deadline had passed.
  uint64_t expired() const { return expired_; }

  // The wall clock the deadlines are read against (tests move it).
  void set_now_ms(int64_t (*now_ms)()) { now_ms_ = now_ms; }

 private:
  // A request waiting for its offloaded work; owns what `then` reads.
  struct Waiting {
    codec::RequestMeta meta;
    codec::Body body;
    Reply reply;
    std::function<void(const Request&, Reply*)> then;
  };
  void StartOffload(codec::RequestMeta meta, codec::Body body, Reply reply,
                    std::vector<OutMessage>* out);

  std::map<uint16_t, std::unique_ptr<Service>> services_;
  // Metric handles by wire service (a handful: one map step per request or batch).
  std::map<uint16_t, metrics::Histogram> batch_sizes_;
  std::map<uint16_t, metrics::Counter> handled_by_service_;
  uint64_t handled_ = 0;
  uint64_t expired_ = 0;
  int64_t (*now_ms_)() = net::WallNowMs;
  OffloadPool* pool_;
  // Shared with the jobs in the pool, which may finish after this is gone.
  std::shared_ptr<CompletionQueue> finished_;
  std::unordered_map<uint64_t, Waiting> offloaded_;  // by job id
  uint64_t last_job_id_ = 0;
  std::vector<CompletionQueue::Done> done_;  // TakeFinished's buffer
  net::LogLimiter busy_log_{1, std::chrono::seconds(10)};
};

}  // namespace imbus::actors

// Public. PushDelivery: the push service's delivery side. `threads` threads, each
// with its own Db connection and HTTP connection (libcurl), none with a bus socket:
// however long a gateway takes, no worker's heartbeats wait for it. Each thread
// loops: claim due outbox rows (PushStore::Claim, under a lease), POST each one's
// JSON to the gateway, then delete it (2xx), dead-letter it (any other 4xx but 408,
// 425 and 429: the gateway refused it for good; or its last try failed) or schedule
// the next try after an exponential backoff. Every try of a notification carries the
// same idempotency key; a worker killed mid-delivery leaves its rows to the others
// once their lease runs out, so each is delivered at least once. The JSON, the
// headers and the signature are in docs/deploy.md, "Offline push".
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "actors/db/db_config.h"
#include "actors/push/push_store.h"
#include "actors/service.h"

namespace imbus::actors::push {

// What the delivery threads of this process did since it started. Plain counters,
// read by anyone (the log line now; a metrics exporter can read Counters()).
struct PushCounters {
  std::atomic<uint64_t> delivered{0};  // accepted by the gateway (2xx)
  std::atomic<uint64_t> retried{0};    // tries that failed and were scheduled again
  std::atomic<uint64_t> dead{0};       // notifications that became dead letters
  std::atomic<uint64_t> dropped{0};    // nothing to deliver: the recipient has no device
};

// The process's counters (every PushDelivery of the process adds to them).
PushCounters& Counters();

class PushDelivery : public BackgroundTask {
 public:
  // The outbox, the gateway and the retry policy: ServiceOptions' push_* fields.
  PushDelivery(DbConfig db, ServiceOptions options);

  void Run(const std::atomic<bool>& stop) override;

 private:
  void Loop(int index, const std::atomic<bool>& stop);

  DbConfig db_;
  ServiceOptions o_;
  PushCounters& counters_ = Counters();
};

// The idempotency key of a notification: "<uid>/<conv>/<seq>", the same on every try.
std::string IdempotencyKey(const OutboxKey& k);
// The JSON body POSTed for `n`; the preview is the text cut to at most
// `preview_bytes` (at a character boundary).
std::string PayloadJson(const Notification& n, size_t preview_bytes);
// "sha256=" and the lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
std::string Signature(const std::string& secret, const std::string& body);
// The backoff before try `tries` + 1 (tries >= 1): base * 2^(tries-1), at most max.
int64_t BackoffMs(uint32_t tries, int64_t base_ms, int64_t max_ms);

}  // namespace imbus::actors::push

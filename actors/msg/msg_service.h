// Public. MsgService: PROTOCOL.md service 5 (SEND, ACK, SYNC, HISTORY,
// CONVERSATIONS; MESSAGE pushes). SENDs are batched: every SEND of a batch is
// committed in one transaction (MsgStore::StoreBatch) and acknowledged only after
// that commit. One instance per worker thread, on that thread's Db.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/msg/msg_rules.h"
#include "actors/msg/msg_store.h"
#include "metrics/metrics.h"
#include "actors/service.h"

namespace imbus::actors::msg {

class MsgService : public Service {
 public:
  struct Options {
    std::function<int64_t()> now_ms;  // ms since the Unix epoch; default: system clock
  };

  MsgService(Db* db, Options options);

  void Handle(const Request& req, Reply* reply) override;
  bool Batchable(uint16_t command) const override;
  void HandleBatch(std::vector<BatchItem>& items) override;

 private:
  void Ack(const Request& req, Reply* reply);
  void Sync(const Request& req, Reply* reply);
  void History(const Request& req, Reply* reply);
  void Conversations(const Request& req, Reply* reply);
  // Checks `uid` takes part in the (parsed, well-formed) conversation: NOT_FOUND (no
  // such group, or a direct conversation between two others), FORBIDDEN (not a
  // member of the group).
  void CheckParticipant(uint64_t uid, const ConvId& id);
  // A direct conversation without messages (`last_seq` 0) whose other user is not a
  // live user cannot exist: NOT_FOUND. One query, and only for empty conversations.
  void CheckPeerIfEmpty(uint64_t uid, const ConvId& id, uint64_t last_seq);

  MsgStore store_;
  Options options_;
  metrics::Counter stored_;  // messages newly stored (no duplicates, no repeats)
};

}  // namespace imbus::actors::msg

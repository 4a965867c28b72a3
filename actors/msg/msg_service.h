// Public. MsgService: PROTOCOL.md service 5 (SEND, ACK, SYNC, HISTORY,
// CONVERSATIONS; MESSAGE pushes). SENDs are batched: every SEND of a batch is
// committed in one transaction (MsgStore::StoreBatch) and acknowledged only after
// that commit. One instance per worker thread, on that thread's Db. A recipient
// with a push device token and no live session gets a push_outbox row in the same
// transaction (delivered by the push service, actors/push/).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "actors/msg/msg_rules.h"
#include "actors/msg/msg_store.h"
#include "metrics/metrics.h"
#include "actors/service.h"
#include "actors/sessions.h"

namespace imbus::actors::msg {

class MsgService : public Service {
 public:
  struct Options {
    std::function<int64_t()> now_ms;  // ms since the Unix epoch; default: system clock
    // The broker's session table, to find recipients without a live session who get
    // an offline push (push_outbox rows). nullptr: no push notifications.
    Sessions* sessions = nullptr;
    // Issue 18: how long after sending a message its sender may recall / edit it.
    int64_t recall_window_ms = 2 * 60 * 1000;
    int64_t edit_window_ms = 24 * 3600 * 1000;
    // READ receipts of one reader in one conversation are held this long after the
    // first ACK that raised its position; one push then carries the highest seq.
    int64_t read_coalesce_ms = 300;
    // At most one TYPING notice per user and conversation this often (per worker).
    int64_t typing_interval_ms = 1500;
  };

  MsgService(Db* db, Options options);

  void Handle(const Request& req, Reply* reply) override;
  bool Batchable(uint16_t command) const override;
  void HandleBatch(std::vector<BatchItem>& items) override;
  int64_t TakeDeferred(int64_t now_ms, std::vector<Push>* out) override;

 private:
  void Typing(const Request& req, Reply* reply);
  void RecallOrEdit(const Request& req, Reply* reply, bool recall);
  void Delete(const Request& req, Reply* reply);
  void SetPrefs(const Request& req, Reply* reply);
  // Every member of the conversation (direct: both users; group: its members).
  std::vector<uint64_t> MembersOf(const ConvId& id);

  // A READ receipt waiting to be pushed (coalesced by (conv, reader)).
  struct PendingRead {
    ConvId id;
    uint64_t seq = 0;
    int64_t due_ms = 0;
  };
  std::map<std::pair<std::string, uint64_t>, PendingRead> reads_;
  std::map<std::pair<std::string, uint64_t>, int64_t> last_typing_;  // -> ms
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

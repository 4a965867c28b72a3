// Public. MsgStore: the MSG service's MariaDB access (schema migration 3 tables
// conversations, messages, user_convs, acks, plus reads of users and group_members).
// Statements are prepared and cached by the Db. Used by one worker thread (its Db).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/db/db.h"
#include "codec/message.h"

namespace imbus::actors::msg {

// Declared once for server and client (codec/message.h).
using StoredMessage = codec::Message;

// One message to store: conv is DirectConv/GroupConv of the target.
struct NewMessage {
  uint64_t sender = 0;
  std::string conv;
  uint64_t gid = 0;
  uint64_t lo = 0, hi = 0;  // direct: both participants (for user_convs)
  std::string cmid;
  std::string text;
};

struct StoreOutcome {
  StoredMessage message;   // as stored (for a dedup hit: the original)
  bool duplicate = false;  // (sender, cmid) was stored before this batch
  bool repeat = false;     // same (sender, cmid) as an earlier item of this batch
};

struct ConvState {
  std::string conv;
  uint64_t last_seq = 0;
  uint64_t acked_seq = 0;
};

enum class Membership { kNoGroup, kNotMember, kMember };

class MsgStore {
 public:
  explicit MsgStore(Db* db) : db_(db) {}

  // Stores the new ones of `batch` in ONE transaction and returns one outcome per
  // item, in order. Each sender's acked position in each conversation is raised to
  // their newest new message (sending counts as reading). Conversation counters are locked in conv
  // order; deadlocks, lock wait timeouts and dedup races (ER_DUP_ENTRY) retry the whole transaction
  // a few times. Throws DbUnavailable / DbError when it could not commit: then nothing of the batch
  // may be acknowledged (for DbUnavailable on COMMIT the outcome is unknown; a resend with the same
  // cmid resolves it).
  std::vector<StoreOutcome> StoreBatch(const std::vector<NewMessage>& batch, int64_t now_ms);

  // Which of `uids` are live (not deleted) users: one query per 64 uids.
  std::set<uint64_t> LiveUsers(const std::set<uint64_t>& uids);
  Membership GroupMembership(uint64_t gid, uint64_t uid);
  std::vector<uint64_t> GroupMembers(uint64_t gid);
  uint64_t LastSeq(const std::string& conv);  // 0 when the conversation has no message

  // Raises the acked position of (uid, conv) to seq; never lowers it.
  void Ack(uint64_t uid, const std::string& conv, uint64_t seq);
  // Messages after uid's acked positions, oldest first (ts, conv, seq), at most limit.
  std::vector<StoredMessage> Sync(uint64_t uid, uint64_t limit);
  // Newest first, seq < before (before == 0: from the newest).
  std::vector<StoredMessage> History(const std::string& conv, uint64_t before, uint64_t limit);
  // uid's conversations that have a message, with ids above `after` in id order, at
  // most `limit`.
  std::vector<ConvState> Conversations(uint64_t uid, const std::string& after, uint64_t limit);

 private:
  std::vector<StoreOutcome> StoreOnce(const std::vector<NewMessage>& batch, int64_t now_ms);

  Db* db_;  // not owned; the worker thread's connection
};

}  // namespace imbus::actors::msg

// Public. MsgStore: the MSG service's MariaDB access (schema migration 3 tables
// messages and acks, which since migration 9 also list the members of each direct
// conversation; the push_outbox rows of migration 5, the file_grants rows and
// messages.file_id of migration 8, plus reads of users, push_devices, group_members
// and files; the conversations table of migration 3 is only a lock now, taken by
// batches that collided twice: a conversation's last seq is its newest message row). Statements are
// prepared and cached by the Db. Used by one worker thread (its Db), which owns the conversations
// the broker routes to it (ConvTails).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "actors/db/db.h"
#include "actors/msg/conv_tails.h"
#include "codec/message.h"
#include "metrics/metrics.h"

namespace imbus::actors::msg {

// Declared once for server and client (codec/message.h).
using StoredMessage = codec::Message;

// One message to store: conv is DirectConv/GroupConv of the target.
struct NewMessage {
  uint64_t sender = 0;
  std::string conv;
  uint64_t gid = 0;
  uint64_t lo = 0, hi = 0;  // direct: both participants (their acks rows)
  std::string cmid;
  std::string text;
  // Issue 19: the file it carries (checked visible to the sender), if any: stored as
  // messages.file_id, with a file_grants row for the conversation.
  std::optional<codec::FileObject> file;
  // The broker routed it to this worker as the conversation's owner, with nothing
  // sent elsewhere since (RequestMeta::owner): the worker's tail may be trusted.
  bool owned = false;
  // Recipients without a live session who have a device token: one push_outbox row
  // each, in the transaction of the message (only when it is new).
  std::vector<uint64_t> push_to;
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
  // Direct conversations with another user: how far that user has read, unless
  // they turned read receipts off (then nullopt).
  std::optional<uint64_t> peer_acked_seq;
};

// Outcomes of a recall or an edit (MsgStore::Change).
enum class ChangeOutcome { kDone, kNoMessage, kNotSender, kRecalled, kTooLate };

enum class Membership { kNoGroup, kNotMember, kMember };

class MsgStore {
 public:
  explicit MsgStore(Db* db)
      : db_(db),
        retries_(metrics::GetCounter("imbus_msg_store_retries_total",
                                     "MSG/SEND batches retried (a deadlock, a lock wait timeout, "
                                     "a stale seq or an unknown duplicate).")) {}

  // Issue 19. Of the file ids `ids`, those `uid` may see (uploaded them, or is a
  // member of a conversation they were sent to: file_grants), with their file
  // objects. One statement per 64 ids; none for an empty set.
  std::map<std::string, codec::FileObject> VisibleFiles(uint64_t uid,
                                                        const std::set<std::string>& ids);
  // Fills in the file objects of `messages` that carry a file id only (a message
  // read from the table: file->name is empty): one statement per 64 files, none
  // when no message has a file. A file whose row is gone leaves the message
  // without `file`.
  void AttachFiles(std::vector<StoredMessage>* messages);

  // Stores the new ones of `batch` in ONE transaction and returns one outcome per
  // item, in order. Each sender's acked position in each conversation is raised to
  // their newest new message (sending counts as reading). Seqs come from the
  // worker's ConvTails; a collision on the keys of messages (ER_DUP_ENTRY: a stale
  // tail or an unknown duplicate), deadlocks and lock wait timeouts retry the whole
  // transaction a few times, reading tails and duplicates from the table; after three
  // such attempts a batch of several conversations is stored one conversation per
  // transaction instead. Throws DbUnavailable / DbError when it could not commit: then
  // nothing of the batch may be acknowledged, though some of it may be stored (a
  // COMMIT lost with the connection, or conversations stored before the one that
  // failed); a resend with the same cmid finds what was stored.
  std::vector<StoreOutcome> StoreBatch(const std::vector<NewMessage>& batch, int64_t now_ms);

  // Which of `uids` are live (not deleted) users: one query per 64 uids.
  std::set<uint64_t> LiveUsers(const std::set<uint64_t>& uids);
  // Which members of the groups `gids` have a push device token: one query per 64
  // groups, whatever their sizes.
  std::set<uint64_t> MembersWithDevices(const std::set<uint64_t>& gids);
  Membership GroupMembership(uint64_t gid, uint64_t uid);
  std::vector<uint64_t> GroupMembers(uint64_t gid);
  uint64_t LastSeq(const std::string& conv);  // 0 when the conversation has no message

  // Raises the acked position of (uid, conv) to seq; never lowers it. True when it
  // rose.
  bool Ack(uint64_t uid, const std::string& conv, uint64_t seq);
  // Messages after uid's acked positions, oldest first (ts, conv, seq), at most
  // limit; not those uid deleted from its view.
  std::vector<StoredMessage> Sync(uint64_t uid, uint64_t limit);
  // Newest first, seq < before (before == 0: from the newest); not those uid deleted
  // from its view.
  std::vector<StoredMessage> History(uint64_t uid, const std::string& conv, uint64_t before,
                                     uint64_t limit);

  // Issue 18. Whether uid sends read receipts (user_prefs; default yes).
  bool ReadReceipts(uint64_t uid);
  void SetReadReceipts(uint64_t uid, bool on);
  // Which of `uids` (other users) block `uid`: one query.
  std::set<uint64_t> BlockedBy(uint64_t uid, const std::vector<uint64_t>& uids);
  // Direct recipients of a SEND batch in one statement: which are live users, and
  // which (recipient, sender) pairs are blocks (the recipient blocks the sender).
  struct Recipients {
    std::set<uint64_t> live;
    std::set<std::pair<uint64_t, uint64_t>> blocks;  // (blocker, blocked)
    std::set<uint64_t> with_devices;                 // users.push_device set
  };
  // `devices`: also which recipients have a push device token (users.push_device,
  // from the same rows).
  Recipients CheckRecipients(const std::set<std::pair<uint64_t, uint64_t>>& pairs,
                             bool devices = false);
  // Group members with the group's muted flag and each one's role, one statement.
  struct GroupInfo {
    bool exists = false;
    bool muted = false;
    std::vector<uint64_t> members;
    std::set<uint64_t> admins;  // owner and admins
  };
  GroupInfo Group(uint64_t gid);
  // Recall (text and file removed, recalled set) or edit (new text, edited_ts) message
  // (conv, seq) of `sender`, if sent at or after `not_before_ms` and not recalled.
  ChangeOutcome Change(const std::string& conv, uint64_t seq, uint64_t sender, bool recall,
                       const std::string& text, int64_t now_ms, int64_t not_before_ms);
  std::optional<StoredMessage> Find(const std::string& conv, uint64_t seq);
  // Hides (conv, seq) from uid's SYNC and HISTORY.
  void Hide(uint64_t uid, const std::string& conv, uint64_t seq);
  // uid's conversations that have a message, with ids above `after` in id order, at
  // most `limit`.
  std::vector<ConvState> Conversations(uint64_t uid, const std::string& after, uint64_t limit);

 private:
  using MessageKey = std::pair<uint64_t, std::string>;  // (sender, cmid)
  using EarlierMessages = std::map<MessageKey, StoredMessage>;
  // The batch sorted out: duplicates of earlier batches, repeats within it, and the
  // new items by conversation (sorted: every worker writes in the same order).
  struct BatchPlan {
    std::vector<StoreOutcome> out;
    std::vector<size_t> repeat_of;  // SIZE_MAX: not a repeat
    std::map<std::string, std::vector<size_t>> by_conv;
    std::vector<size_t> fresh;                     // the new items, in (conv, seq) order
    std::map<std::string, ConvTails::Tail> tails;  // before this batch
    std::set<std::string_view> claimed;            // new direct conversations, acks rows written
  };
  struct TailUpdate {
    const std::string* conv;
    ConvTails::Tail tail;               // after this batch
    std::vector<uint64_t> new_members;  // acks rows of a new direct conversation
  };

  // `serialize`: the batch collided twice already (writers without ownership of the
  // same conversations): lock its conversations first (LockConvs) so that such
  // writers take turns instead of colliding again.
  std::vector<StoreOutcome> StoreOnce(const std::vector<NewMessage>& batch, int64_t now_ms,
                                      bool check_earlier, bool serialize);
  void LockConvs(const std::vector<NewMessage>& batch);
  EarlierMessages StoredEarlier(const std::vector<NewMessage>& batch);
  BatchPlan PlanBatch(const std::vector<NewMessage>& batch, const EarlierMessages& earlier);
  // Tails of the batch's conversations: from ConvTails when every item of the
  // conversation was routed to this worker as its owner, else from the table.
  // `claim`: new direct conversations may be told by their members' acks rows
  // (ClaimNewConvs); false after a collision.
  void LoadTails(const std::vector<NewMessage>& batch, bool claim, BatchPlan* plan);
  void ClaimNewConvs(const std::vector<NewMessage>& batch, BatchPlan* plan,
                     std::vector<const std::string*>* missing);
  void ReadTails(const std::vector<const std::string*>& missing, BatchPlan* plan);
  std::vector<TailUpdate> AssignSeqs(const std::vector<NewMessage>& batch, int64_t now_ms,
                                     BatchPlan* plan);
  void InsertMembers(const std::vector<TailUpdate>& tails);
  void InsertMessages(const BatchPlan& plan);
  void InsertFileGrants(const BatchPlan& plan);
  void RaiseSenderAcks(const BatchPlan& plan);
  void InsertPushOutbox(const std::vector<NewMessage>& batch, const BatchPlan& plan,
                        int64_t now_ms);
  void ForgetConvs(const std::vector<NewMessage>& batch);
  static bool SpansConversations(const std::vector<NewMessage>& batch);
  std::vector<StoreOutcome> StoreByConversation(const std::vector<NewMessage>& batch,
                                                int64_t now_ms);

  Db* db_;  // not owned; the worker thread's connection
  ConvTails tails_;
  metrics::Counter retries_;
};

}  // namespace imbus::actors::msg

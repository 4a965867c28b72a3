// Public. Typed calls for the MSG service (PROTOCOL.md service 5) over a logged-in
// Client: send, ack, sync, history, conversations, and reading MESSAGE pushes.
// Each call blocks until its response or the client's timeout and returns a Result
// (code 0 = OK). Same threading as Client: the caller's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "codec/message.h"

namespace imbus::client {

struct SentMessage {
  std::string conv;
  uint64_t seq = 0;
  int64_t ts = 0;
};

// One message as in SYNC, HISTORY and MESSAGE pushes (the server's type too).
using Message = codec::Message;

struct SyncBatch {
  std::vector<Message> messages;  // oldest first
  bool more = false;              // more are waiting: ACK these and SYNC again
};

struct ConvInfo {
  std::string conv;
  uint64_t last_seq = 0;
  uint64_t acked_seq = 0;
  // Direct conversations: how far the other user has read (absent when they send
  // no read receipts, or from an older server).
  std::optional<uint64_t> peer_acked_seq;
};

// A MSG/READ push: `uid` has read `conv` up to `seq`.
struct ReadReceipt {
  std::string conv;
  uint64_t uid = 0;
  uint64_t seq = 0;
};

// A fresh random cmid (32 hex digits). Keep it to resend the same message.
std::string NewCmid();

// Resending with the same cmid returns the first conv/seq/ts and stores nothing new.
Result<SentMessage> SendToUser(Client& c, uint64_t uid, std::string_view cmid,
                               std::string_view text);
Result<SentMessage> SendToGroup(Client& c, uint64_t gid, std::string_view cmid,
                                std::string_view text);
Result<Empty> Ack(Client& c, std::string_view conv, uint64_t seq);
// limit 0: the server's default (200).
Result<SyncBatch> Sync(Client& c, uint64_t limit = 0);
// before 0: from the newest; limit 0: the server's default (50). Newest first.
Result<std::vector<Message>> History(Client& c, std::string_view conv, uint64_t before = 0,
                                     uint64_t limit = 0);
Result<std::vector<ConvInfo>> Conversations(Client& c);

// The message of a MSG/MESSAGE push; nullopt for any other push or a bad body.
std::optional<Message> MessageFromPush(const Push& push);

// Issue 18 (docs/protocol.md "Chat features"). TYPING's value: whether the notice
// went out (false: within the rate interval of the previous one).
Result<bool> Typing(Client& c, std::string_view conv);
// The message in its new state.
Result<Message> Recall(Client& c, std::string_view conv, uint64_t seq);
Result<Message> Edit(Client& c, std::string_view conv, uint64_t seq, std::string_view text);
Result<Empty> DeleteForMe(Client& c, std::string_view conv, uint64_t seq);
// Sets whether the user sends read receipts; returns the setting now.
Result<bool> SetReadReceipts(Client& c, bool on);
std::optional<ReadReceipt> ReadFromPush(const Push& push);
// MSG/UPDATED (a recall or an edit): the message in its final state.
std::optional<Message> UpdatedFromPush(const Push& push);

}  // namespace imbus::client

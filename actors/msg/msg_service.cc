#include "actors/msg/msg_service.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "actors/list_page.h"
#include "codec/commands.h"
#include "net/clock.h"

namespace imbus::actors::msg {
namespace {

using codec::Code;

void WriteMessages(codec::MapWriter& w, const std::vector<StoredMessage>& messages) {
  w.packer().pack_array(static_cast<uint32_t>(messages.size()));
  for (const StoredMessage& m : messages) codec::MessageOut(w, m);
}

// Drops messages from the end until the rest fit kMaxReplyBytes (always keeps one: a
// single message of kMaxText fits). True when it dropped any.
bool FitReply(std::vector<StoredMessage>* messages) {
  constexpr size_t kPerMessage = 96;  // keys, ints and msgpack headers, generously
  size_t bytes = 0;
  for (size_t i = 0; i < messages->size(); ++i) {
    const StoredMessage& m = (*messages)[i];
    bytes += kPerMessage + m.conv.size() + m.text.size() + m.cmid.size();
    if (m.file) {  // nine keys, five ints and the bin header of a file object
      bytes += 2 * kPerMessage + m.file->file.size() + m.file->name.size() + m.file->mime.size() +
               m.file->sha256.size();
    }
    if (bytes > kMaxReplyBytes && i > 0) {
      messages->resize(i);
      return true;
    }
  }
  return false;
}

// Group members (with the muted flag and the admins) per gid, read at most once per
// batch, in one statement. Membership of the sender is checked against the same list
// that the push goes to.
class MemberCache {
 public:
  explicit MemberCache(MsgStore* store) : store_(store) {}
  const MsgStore::GroupInfo& Get(uint64_t gid) {
    auto it = groups_.find(gid);
    if (it == groups_.end()) it = groups_.emplace(gid, store_->Group(gid)).first;
    return it->second;
  }

 private:
  MsgStore* store_;
  std::map<uint64_t, MsgStore::GroupInfo> groups_;
};

// Fills each message's push_to: its recipients (not the sender) who have a device
// token (`direct_holders`, read with the recipients' check, for direct messages; one
// more query for the members of the batch's groups) and no live session (one lookup
// in the broker's session table for all of them). Nothing is asked when nobody has a
// token.
void PlanPushes(std::vector<NewMessage>* batch, MemberCache* members, MsgStore* store,
                Sessions* sessions, const std::set<uint64_t>& direct_holders) {
  std::set<uint64_t> gids;
  for (const NewMessage& m : *batch) {
    if (m.gid != 0) gids.insert(m.gid);
  }
  std::set<uint64_t> holders = direct_holders;
  if (!gids.empty()) holders.merge(store->MembersWithDevices(gids));
  if (holders.empty()) return;
  const std::vector<uint64_t> list(holders.begin(), holders.end());
  std::set<uint64_t> offline;
  try {
    const std::vector<bool> online = sessions->Online(list);
    for (size_t i = 0; i < list.size() && i < online.size(); ++i) {
      if (!online[i]) offline.insert(list[i]);
    }
  } catch (const SessionsUnavailable& e) {
    // Rather a notification too many than one lost: all of them count as offline.
    spdlog::warn("msg: session lookup failed ({}); notifying every token holder", e.what());
    offline = holders;
  }
  if (offline.empty()) return;
  for (NewMessage& m : *batch) {
    if (m.gid != 0) {
      for (uint64_t uid : members->Get(m.gid).members) {
        if (uid != m.sender && offline.count(uid) != 0) m.push_to.push_back(uid);
      }
    } else {
      const uint64_t peer = m.lo == m.sender ? m.hi : m.lo;
      if (peer != m.sender && offline.count(peer) != 0) m.push_to.push_back(peer);
    }
  }
}

void PushTo(Reply* reply, std::vector<uint64_t> uids, uint16_t command, std::string body,
            bool skip_requester) {
  if (uids.empty()) return;
  Push push;
  push.meta.uids = std::move(uids);
  push.meta.service = codec::ToWire(codec::Service::kMsg);
  push.meta.command = command;
  push.body = std::move(body);
  push.skip_requester = skip_requester;
  reply->pushes.push_back(std::move(push));
}

}  // namespace

MsgService::MsgService(Db* db, Options options)
    : store_(db),
      options_(std::move(options)),
      stored_(metrics::GetCounter("imbus_msg_messages_stored_total",
                                  "Messages stored (a resend of a stored message is not "
                                  "counted again).")) {
  if (!options_.now_ms) options_.now_ms = net::WallNowMs;
}

bool MsgService::Batchable(uint16_t command) const { return command == codec::msg::kSend; }

void MsgService::Handle(const Request& req, Reply* reply) {
  switch (req.meta.command) {
    case codec::msg::kSend: {
      std::vector<BatchItem> one;
      one.push_back(BatchItem{&req, Reply{}, Code::kOk, {}});
      HandleBatch(one);
      if (one[0].code != Code::kOk) throw RequestError(one[0].code, one[0].error);
      *reply = std::move(one[0].reply);
      return;
    }
    case codec::msg::kAck:
      return Ack(req, reply);
    case codec::msg::kSync:
      return Sync(req, reply);
    case codec::msg::kHistory:
      return History(req, reply);
    case codec::msg::kConversations:
      return Conversations(req, reply);
    case codec::msg::kTyping:
      return Typing(req, reply);
    case codec::msg::kRecall:
      return RecallOrEdit(req, reply, true);
    case codec::msg::kEdit:
      return RecallOrEdit(req, reply, false);
    case codec::msg::kDelete:
      return Delete(req, reply);
    case codec::msg::kSetPrefs:
      return SetPrefs(req, reply);
    default:
      throw RequestError(Code::kUnsupported,
                         "msg has no command " + std::to_string(req.meta.command));
  }
}

void MsgService::HandleBatch(std::vector<BatchItem>& items) {
  // Parse every item first, so that the recipients of the whole batch are checked
  // in one query instead of one round trip each.
  std::vector<std::optional<SendFields>> fields(items.size());
  std::set<std::pair<uint64_t, uint64_t>> recipients;  // (recipient, sender)
  for (size_t i = 0; i < items.size(); ++i) {
    BatchItem& item = items[i];
    try {
      const uint64_t uid = item.req->meta.uid;
      fields[i] = ParseSend(item.req->body);
      if (fields[i]->to_uid != 0 && fields[i]->to_uid != uid) {
        recipients.insert({fields[i]->to_uid, uid});
      }
    } catch (const RequestError& e) {
      item.code = e.code();
      item.error = e.what();
    } catch (const codec::BadField& e) {
      item.code = Code::kBadRequest;
      item.error = e.what();
    }
  }
  // Live recipients and blocks, one statement (no query when empty); with push on,
  // also who of them has a device token.
  const MsgStore::Recipients checked =
      store_.CheckRecipients(recipients, options_.sessions != nullptr);
  const std::set<uint64_t>& direct_holders = checked.with_devices;
  // Issue 19: the files the batch's SENDs carry, that their senders may see: one
  // statement per sender with files (none in a batch without files).
  std::map<uint64_t, std::set<std::string>> wanted;  // sender -> file ids
  for (size_t i = 0; i < items.size(); ++i) {
    // File ids are printable ASCII: anything else is no file (and no query).
    if (fields[i] && !fields[i]->file.empty() &&
        std::all_of(fields[i]->file.begin(), fields[i]->file.end(),
                    [](char ch) { return ch > ' ' && ch < 0x7f; })) {
      wanted[items[i].req->meta.uid].insert(fields[i]->file);
    }
  }
  std::map<uint64_t, std::map<std::string, codec::FileObject>> visible;
  for (const auto& [uid, ids] : wanted) visible[uid] = store_.VisibleFiles(uid, ids);

  MemberCache members(&store_);
  std::vector<NewMessage> batch;
  std::vector<size_t> item_of;  // batch index -> items index
  for (size_t i = 0; i < items.size(); ++i) {
    if (!fields[i]) continue;
    BatchItem& item = items[i];
    SendFields& f = *fields[i];
    try {
      const uint64_t uid = item.req->meta.uid;
      NewMessage m;
      m.sender = uid;
      if (f.to_uid != 0) {
        if (f.to_uid != uid && checked.live.count(f.to_uid) == 0) {
          throw RequestError(Code::kNotFound, "no such user");
        }
        if (checked.blocks.count({f.to_uid, uid}) != 0) {
          throw RequestError(Code::kForbidden, "blocked by the recipient");
        }
        m.conv = DirectConv(uid, f.to_uid);
        m.lo = std::min(uid, f.to_uid);
        m.hi = std::max(uid, f.to_uid);
      } else {
        const MsgStore::GroupInfo& group = members.Get(f.gid);
        if (!group.exists) throw RequestError(Code::kNotFound, "no such group");
        const std::vector<uint64_t>& list = group.members;
        if (std::find(list.begin(), list.end(), uid) == list.end()) {
          throw RequestError(Code::kForbidden, "not a member of the group");
        }
        if (group.muted && group.admins.count(uid) == 0) {
          throw RequestError(Code::kForbidden, "the group is muted: only admins may write");
        }
        m.conv = GroupConv(f.gid);
        m.gid = f.gid;
      }
      if (!f.file.empty()) {
        const auto& mine = visible[uid];
        auto it = mine.find(f.file);
        if (it == mine.end()) throw RequestError(Code::kNotFound, "no such file");
        m.file = it->second;
        // Clients that know nothing of files still show something.
        if (f.text.empty()) f.text = "[file] " + m.file->name;
      }
      m.cmid = std::move(f.cmid);
      m.text = std::move(f.text);
      m.owned = item.req->meta.owner;
      batch.push_back(std::move(m));
      item_of.push_back(i);
    } catch (const RequestError& e) {
      item.code = e.code();
      item.error = e.what();
    }
  }
  if (batch.empty()) return;
  if (options_.sessions != nullptr) {
    PlanPushes(&batch, &members, &store_, options_.sessions, direct_holders);
  }

  // Throws when the batch could not be committed: the host then fails every item,
  // so nothing unstored is ever acknowledged.
  std::vector<StoreOutcome> outcomes = store_.StoreBatch(batch, options_.now_ms());
  // Resends of messages stored by an earlier batch come back with their file id
  // only: their file objects, one statement (none when no such message has a file).
  if (std::any_of(outcomes.begin(), outcomes.end(), [](const StoreOutcome& o) {
        return o.message.file && o.message.file->name.empty();
      })) {
    std::vector<StoredMessage> earlier;
    for (const StoreOutcome& o : outcomes) earlier.push_back(o.message);
    try {
      store_.AttachFiles(&earlier);
      for (size_t k = 0; k < outcomes.size(); ++k) outcomes[k].message = std::move(earlier[k]);
    } catch (const DbError& e) {  // committed already: answer OK, SYNC has the file
      spdlog::warn("msg: no file objects for resent messages: {}", e.what());
      for (StoreOutcome& o : outcomes) {
        if (o.message.file && o.message.file->name.empty()) o.message.file.reset();
      }
    }
  }

  for (size_t k = 0; k < outcomes.size(); ++k) {
    if (!outcomes[k].duplicate && !outcomes[k].repeat) stored_.Inc();
    const StoredMessage& m = outcomes[k].message;
    Reply& reply = items[item_of[k]].reply;
    OkWriter w(3);
    w.Key("conv").Str(m.conv);
    w.Key("seq").Uint(m.seq);
    w.Key("ts").Int(m.ts);
    reply.body = w.Finish();
    // A repeat inside the batch is pushed once, by its first item. A duplicate of an
    // earlier batch is pushed again: its first push may have been lost with a killed
    // worker; clients drop pushes whose (conv, seq) they already have.
    if (outcomes[k].repeat) continue;
    std::vector<uint64_t> uids;
    if (m.gid != 0) {
      try {
        uids = members.Get(m.gid).members;
      } catch (const DbError& e) {  // committed already: answer OK, SYNC delivers
        spdlog::warn("msg: no push for {}#{}: {}", m.conv, m.seq, e.what());
        continue;
      }
    } else if (std::optional<ConvId> id = ParseConv(m.conv)) {
      uids.push_back(id->lo);
      if (id->hi != id->lo) uids.push_back(id->hi);
    }
    if (std::find(uids.begin(), uids.end(), m.from) == uids.end()) uids.push_back(m.from);
    // One push: the recipients and the sender's other sessions; the broker leaves
    // out the sending connection only (skip_rid is per connection, not per user).
    Push push;
    push.meta.uids = std::move(uids);
    push.meta.service = codec::ToWire(codec::Service::kMsg);
    push.meta.command = codec::msg::kMessage;
    push.body = codec::MessageBody(m);
    push.skip_requester = true;
    reply.pushes.push_back(std::move(push));
  }
}

void MsgService::CheckParticipant(uint64_t uid, const ConvId& id) {
  if (!id.group) {
    // Someone else's direct conversation can never be the caller's: as for a
    // conversation that does not exist, NOT_FOUND (and nothing on whether it does).
    if (!id.HasMember(uid)) throw RequestError(Code::kNotFound, "no such conversation");
    return;
  }
  switch (store_.GroupMembership(id.gid, uid)) {
    case Membership::kNoGroup:
      throw RequestError(Code::kNotFound, "no such group");
    case Membership::kNotMember:
      throw RequestError(Code::kForbidden, "not a member of the group");
    case Membership::kMember:
      break;
  }
}

void MsgService::CheckPeerIfEmpty(uint64_t uid, const ConvId& id, uint64_t last_seq) {
  if (id.group || last_seq != 0) return;
  const uint64_t peer = id.Peer(uid);
  if (peer == uid) return;  // one's own notes: there is nothing to find
  if (store_.LiveUsers({peer}).empty()) throw RequestError(Code::kNotFound, "no such user");
}

void MsgService::Ack(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const AckFields f = ParseAck(req.body);
  CheckParticipant(uid, f.id);
  const uint64_t last_seq = store_.LastSeq(f.conv);
  CheckPeerIfEmpty(uid, f.id, last_seq);
  if (f.seq > last_seq) {
    throw RequestError(Code::kBadRequest, "seq is beyond the conversation's last message");
  }
  if (f.seq > 0 && store_.Ack(uid, f.conv, f.seq)) {
    // The position rose: a READ receipt, coalesced with the ACKs that follow soon.
    auto [it, inserted] = reads_.try_emplace({f.conv, uid});
    if (inserted) {
      it->second.id = f.id;
      it->second.due_ms = options_.now_ms() + options_.read_coalesce_ms;
    }
    it->second.seq = std::max(it->second.seq, f.seq);
  }
  reply->body = OkWriter(0).Finish();
}

std::vector<uint64_t> MsgService::MembersOf(const ConvId& id) {
  if (id.group) return store_.Group(id.gid).members;
  std::vector<uint64_t> uids{id.lo};
  if (id.hi != id.lo) uids.push_back(id.hi);
  return uids;
}

int64_t MsgService::TakeDeferred(int64_t now_ms, std::vector<Push>* out) {
  int64_t next = -1;
  for (auto it = reads_.begin(); it != reads_.end();) {
    const PendingRead& r = it->second;
    if (r.due_ms > now_ms) {
      const int64_t wait = r.due_ms - now_ms;
      if (next < 0 || wait < next) next = wait;
      ++it;
      continue;
    }
    const std::string& conv = it->first.first;
    const uint64_t reader = it->first.second;
    // The reader's own devices always learn it; the others only when the reader
    // sends receipts. A failed look-up drops this receipt (CONVERSATIONS has it).
    std::vector<uint64_t> uids{reader};
    try {
      if (store_.ReadReceipts(reader)) {
        for (uint64_t u : MembersOf(r.id)) {
          if (u != reader) uids.push_back(u);
        }
      }
    } catch (const DbError& e) {
      spdlog::warn("msg: READ receipt of {} in {} not sent: {}", reader, conv, e.what());
    }
    Push push;
    push.meta.uids = std::move(uids);
    push.meta.service = codec::ToWire(codec::Service::kMsg);
    push.meta.command = codec::msg::kRead;
    codec::MapWriter w(3);
    w.Key("conv").Str(conv);
    w.Key("uid").Uint(reader);
    w.Key("seq").Uint(r.seq);
    push.body = w.Finish();
    out->push_back(std::move(push));
    it = reads_.erase(it);
  }
  return next;
}

void MsgService::Typing(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const std::string conv = req.body.RequireString("conv");
  const std::optional<ConvId> id = ParseConv(conv);
  if (!id) throw RequestError(Code::kBadRequest, "malformed conv");
  std::vector<uint64_t> to;
  if (id->group) {
    const MsgStore::GroupInfo g = store_.Group(id->gid);
    if (!g.exists) throw RequestError(Code::kNotFound, "no such group");
    if (std::find(g.members.begin(), g.members.end(), uid) == g.members.end()) {
      throw RequestError(Code::kForbidden, "not a member of the group");
    }
    for (uint64_t u : g.members) {
      if (u != uid) to.push_back(u);
    }
  } else {
    if (!id->HasMember(uid)) throw RequestError(Code::kNotFound, "no such conversation");
    const uint64_t peer = id->Peer(uid);
    if (peer != uid) {
      if (store_.LiveUsers({peer}).empty()) throw RequestError(Code::kNotFound, "no such user");
      // A peer who blocked the caller hears nothing; the caller is not told.
      if (store_.BlockedBy(uid, {peer}).empty()) to.push_back(peer);
    }
  }
  // Rate: one notice per (user, conversation) per interval; the rest are answered
  // OK with sent: false and go nowhere.
  const int64_t now = options_.now_ms();
  if (last_typing_.size() > 100000) {
    for (auto it = last_typing_.begin(); it != last_typing_.end();) {
      it = now - it->second >= options_.typing_interval_ms ? last_typing_.erase(it) : ++it;
    }
  }
  int64_t& last = last_typing_[{conv, uid}];
  const bool send = last == 0 || now - last >= options_.typing_interval_ms;
  if (send) {
    last = now;
    codec::MapWriter w(2);
    w.Key("conv").Str(conv);
    w.Key("uid").Uint(uid);
    PushTo(reply, std::move(to), codec::msg::kTypingNotice, w.Finish(), false);
  }
  OkWriter w(1);
  w.Key("sent").Bool(send);
  reply->body = w.Finish();
}

void MsgService::RecallOrEdit(const Request& req, Reply* reply, bool recall) {
  const uint64_t uid = req.meta.uid;
  const AckFields f = ParseAck(req.body);  // {conv, seq}
  if (!f.id.group && !f.id.HasMember(uid)) {
    throw RequestError(Code::kNotFound, "no such conversation");
  }
  std::string text;
  if (!recall) {
    text = req.body.RequireString("text");
    if (text.empty()) throw RequestError(Code::kBadRequest, "text must not be empty");
    if (text.size() > kMaxText) {
      throw RequestError(Code::kTooLarge, "text is longer than 8192 bytes");
    }
    if (!IsValidUtf8(text)) throw RequestError(Code::kBadRequest, "text is not valid UTF-8");
  }
  const int64_t now = options_.now_ms();
  const int64_t window = recall ? options_.recall_window_ms : options_.edit_window_ms;
  switch (store_.Change(f.conv, f.seq, uid, recall, text, now, now - window)) {
    case ChangeOutcome::kDone:
      break;
    case ChangeOutcome::kNoMessage:
      throw RequestError(Code::kNotFound, "no such message");
    case ChangeOutcome::kNotSender:
      throw RequestError(Code::kForbidden, "not your message");
    case ChangeOutcome::kRecalled:
      throw RequestError(Code::kConflict, "the message was recalled");
    case ChangeOutcome::kTooLate:
      throw RequestError(Code::kForbidden, recall ? "too late to recall" : "too late to edit");
  }
  std::optional<StoredMessage> m = store_.Find(f.conv, f.seq);
  if (!m) throw RequestError(Code::kNotFound, "no such message");
  // Every member, and the sender's other sessions: the message in its final state.
  std::vector<uint64_t> uids = MembersOf(f.id);
  if (std::find(uids.begin(), uids.end(), uid) == uids.end()) uids.push_back(uid);
  PushTo(reply, std::move(uids), codec::msg::kUpdated, codec::MessageBody(*m), true);
  OkWriter w(1);
  w.Key("message");
  codec::MessageOut(w, *m);
  reply->body = w.Finish();
}

void MsgService::Delete(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const AckFields f = ParseAck(req.body);
  CheckParticipant(uid, f.id);
  if (f.seq == 0 || f.seq > store_.LastSeq(f.conv)) {
    throw RequestError(Code::kNotFound, "no such message");
  }
  store_.Hide(uid, f.conv, f.seq);
  codec::MapWriter w(2);
  w.Key("conv").Str(f.conv);
  w.Key("seq").Uint(f.seq);
  PushTo(reply, {uid}, codec::msg::kDeleted, w.Finish(), true);  // the user's other devices
  reply->body = OkWriter(0).Finish();
}

void MsgService::SetPrefs(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  if (std::optional<bool> on = req.body.GetBool("read_receipts")) store_.SetReadReceipts(uid, *on);
  OkWriter w(1);
  w.Key("read_receipts").Bool(store_.ReadReceipts(uid));
  reply->body = w.Finish();
}

void MsgService::Sync(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const uint64_t limit = ParseLimit(req.body, kDefaultSyncLimit, kMaxSyncLimit);
  std::vector<StoredMessage> messages = store_.Sync(uid, limit + 1);
  bool more = messages.size() > limit;
  if (more) messages.resize(limit);
  if (FitReply(&messages)) more = true;
  OkWriter w(2);
  w.Key("messages");
  WriteMessages(w, messages);
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

void MsgService::History(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const HistoryFields f = ParseHistory(req.body);
  CheckParticipant(uid, f.id);
  std::vector<StoredMessage> messages = store_.History(uid, f.conv, f.before, f.limit);
  // Only an empty page costs the extra look-ups; a page with messages proves the
  // conversation exists.
  if (messages.empty() && !f.id.group) CheckPeerIfEmpty(uid, f.id, store_.LastSeq(f.conv));
  (void)FitReply(&messages);  // newest first: the client pages on from the oldest it got
  OkWriter w(1);
  w.Key("messages");
  WriteMessages(w, messages);
  reply->body = w.Finish();
}

void MsgService::Conversations(const Request& req, Reply* reply) {
  const uint64_t uid = req.meta.uid;
  const uint32_t limit = ListLimit(req.body);
  const std::string after = req.body.GetString("after").value_or("");
  // Conversation ids are short printable ASCII; anything else is past no id the
  // client was given (and would not compare with the ASCII column).
  const bool printable =
      std::all_of(after.begin(), after.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
  if (after.size() > 64 || !printable) {
    throw RequestError(codec::Code::kBadRequest, "after must be a conversation id");
  }
  std::vector<ConvState> convs = store_.Conversations(uid, after, limit + 1);
  const bool more = FitPage(&convs, limit, [](const ConvState& c) {
    return 72 + c.conv.size();  // {conv, last_seq, acked_seq, peer_acked_seq}
  });
  OkWriter w(2);
  w.Key("convs");
  w.packer().pack_array(static_cast<uint32_t>(convs.size()));
  for (const ConvState& c : convs) {
    w.packer().pack_map(c.peer_acked_seq ? 4 : 3);
    w.Key("conv").Str(c.conv);
    w.Key("last_seq").Uint(c.last_seq);
    w.Key("acked_seq").Uint(c.acked_seq);
    if (c.peer_acked_seq) w.Key("peer_acked_seq").Uint(*c.peer_acked_seq);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

}  // namespace imbus::actors::msg

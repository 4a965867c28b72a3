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
    if (bytes > kMaxReplyBytes && i > 0) {
      messages->resize(i);
      return true;
    }
  }
  return false;
}

// Group members per gid, read at most once per batch. Membership of the sender is
// checked against the same list that the push goes to.
class MemberCache {
 public:
  explicit MemberCache(MsgStore* store) : store_(store) {}
  const std::vector<uint64_t>& Get(uint64_t gid) {
    auto it = members_.find(gid);
    if (it == members_.end()) it = members_.emplace(gid, store_->GroupMembers(gid)).first;
    return it->second;
  }

 private:
  MsgStore* store_;
  std::map<uint64_t, std::vector<uint64_t>> members_;
};

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
    default:
      throw RequestError(Code::kUnsupported,
                         "msg has no command " + std::to_string(req.meta.command));
  }
}

void MsgService::HandleBatch(std::vector<BatchItem>& items) {
  // Parse every item first, so that the recipients of the whole batch are checked
  // in one query instead of one round trip each.
  std::vector<std::optional<SendFields>> fields(items.size());
  std::set<uint64_t> recipients;
  for (size_t i = 0; i < items.size(); ++i) {
    BatchItem& item = items[i];
    try {
      const uint64_t uid = item.req->meta.uid;
      fields[i] = ParseSend(item.req->body);
      if (fields[i]->to_uid != 0 && fields[i]->to_uid != uid) recipients.insert(fields[i]->to_uid);
    } catch (const RequestError& e) {
      item.code = e.code();
      item.error = e.what();
    } catch (const codec::BadField& e) {
      item.code = Code::kBadRequest;
      item.error = e.what();
    }
  }
  const std::set<uint64_t> live = store_.LiveUsers(recipients);  // no query when empty

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
        if (f.to_uid != uid && live.count(f.to_uid) == 0) {
          throw RequestError(Code::kNotFound, "no such user");
        }
        m.conv = DirectConv(uid, f.to_uid);
        m.lo = std::min(uid, f.to_uid);
        m.hi = std::max(uid, f.to_uid);
      } else {
        const std::vector<uint64_t>& list = members.Get(f.gid);
        if (std::find(list.begin(), list.end(), uid) == list.end()) {
          if (store_.GroupMembership(f.gid, uid) == Membership::kNoGroup) {
            throw RequestError(Code::kNotFound, "no such group");
          }
          throw RequestError(Code::kForbidden, "not a member of the group");
        }
        m.conv = GroupConv(f.gid);
        m.gid = f.gid;
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

  // Throws when the batch could not be committed: the host then fails every item,
  // so nothing unstored is ever acknowledged.
  const std::vector<StoreOutcome> outcomes = store_.StoreBatch(batch, options_.now_ms());

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
        uids = members.Get(m.gid);
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
  if (f.seq > 0) store_.Ack(uid, f.conv, f.seq);
  reply->body = OkWriter(0).Finish();
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
  std::vector<StoredMessage> messages = store_.History(f.conv, f.before, f.limit);
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
    return 48 + c.conv.size();  // {conv, last_seq, acked_seq}
  });
  OkWriter w(2);
  w.Key("convs");
  w.packer().pack_array(static_cast<uint32_t>(convs.size()));
  for (const ConvState& c : convs) {
    w.packer().pack_map(3);
    w.Key("conv").Str(c.conv);
    w.Key("last_seq").Uint(c.last_seq);
    w.Key("acked_seq").Uint(c.acked_seq);
  }
  w.Key("more").Bool(more);
  reply->body = w.Finish();
}

}  // namespace imbus::actors::msg

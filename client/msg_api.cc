#include "client/msg_api.h"

#include <random>

#include "client/directory_api.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "codec/message.h"

namespace imbus::client {
namespace {

using codec::ArrayOf;
using codec::IntIn;
using codec::StringIn;
using codec::UintIn;
using wire::Typed;

constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

std::vector<Message> MessagesOf(const codec::Body& b) {
  std::vector<Message> out;
  for (const msgpack::object* o : ArrayOf(b, "messages")) out.push_back(codec::MessageIn(*o));
  return out;
}

Result<SentMessage> Send(Client& c, std::string_view target, uint64_t id, std::string_view cmid,
                         std::string_view text) {
  codec::MapWriter w(3);
  w.Key(target).Uint(id);
  w.Key("cmid").Str(cmid);
  w.Key("text").Str(text);
  return Typed<SentMessage>(c.Call(kMsg, codec::msg::kSend, w.Finish()), [](const codec::Body& b) {
    return SentMessage{StringIn(b.root(), "conv"), UintIn(b.root(), "seq"), IntIn(b.root(), "ts")};
  });
}

}  // namespace

std::string NewCmid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int k = 0; k < 16; ++k, v >>= 4) s += kHex[v & 15];
  }
  return s;
}

Result<SentMessage> SendToUser(Client& c, uint64_t uid, std::string_view cmid,
                               std::string_view text) {
  return Send(c, "to", uid, cmid, text);
}

Result<SentMessage> SendToGroup(Client& c, uint64_t gid, std::string_view cmid,
                                std::string_view text) {
  return Send(c, "gid", gid, cmid, text);
}

Result<Empty> Ack(Client& c, std::string_view conv, uint64_t seq) {
  codec::MapWriter w(2);
  w.Key("conv").Str(conv);
  w.Key("seq").Uint(seq);
  return Typed<Empty>(c.Call(kMsg, codec::msg::kAck, w.Finish()),
                      [](const codec::Body&) { return Empty{}; });
}

Result<SyncBatch> Sync(Client& c, uint64_t limit) {
  codec::MapWriter w(limit != 0 ? 1 : 0);
  if (limit != 0) w.Key("limit").Uint(limit);
  return Typed<SyncBatch>(c.Call(kMsg, codec::msg::kSync, w.Finish()), [](const codec::Body& b) {
    return SyncBatch{MessagesOf(b), b.GetBool("more").value_or(false)};
  });
}

Result<std::vector<Message>> History(Client& c, std::string_view conv, uint64_t before,
                                     uint64_t limit) {
  codec::MapWriter w(1 + (before != 0 ? 1 : 0) + (limit != 0 ? 1 : 0));
  w.Key("conv").Str(conv);
  if (before != 0) w.Key("before").Uint(before);
  if (limit != 0) w.Key("limit").Uint(limit);
  return Typed<std::vector<Message>>(c.Call(kMsg, codec::msg::kHistory, w.Finish()), MessagesOf);
}

Result<std::vector<ConvInfo>> Conversations(Client& c) {
  return wire::AllPages<ConvInfo, std::string>(
      [&c](const std::optional<std::string>& after) {
        codec::MapWriter w(after ? 2 : 1);
        w.Key("limit").Uint(wire::kMaxListLimit);
        if (after) w.Key("after").Str(*after);
        return c.Call(kMsg, codec::msg::kConversations, w.Finish());
      },
      "convs",
      [](const msgpack::object& o) {
        ConvInfo info{StringIn(o, "conv"), UintIn(o, "last_seq"), UintIn(o, "acked_seq"), {}};
        if (codec::FieldIn(o, "peer_acked_seq") != nullptr) {
          info.peer_acked_seq = UintIn(o, "peer_acked_seq");
        }
        return info;
      },
      [](const ConvInfo& conv) { return conv.conv; });
}

std::optional<Message> MessageFromPush(const Push& push) {
  if (push.service != kMsg || push.command != codec::msg::kMessage) return std::nullopt;
  try {
    return codec::MessageIn(push.body.root());
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

namespace {

std::string ConvSeq(std::string_view conv, uint64_t seq, std::string_view text = {}) {
  codec::MapWriter w(text.empty() ? 2 : 3);
  w.Key("conv").Str(conv);
  w.Key("seq").Uint(seq);
  if (!text.empty()) w.Key("text").Str(text);
  return w.Finish();
}

Message MessageField(const codec::Body& b) {
  const msgpack::object* m = codec::FieldIn(b.root(), "message");
  if (m == nullptr) throw codec::BadField("missing field 'message'");
  return codec::MessageIn(*m);
}

}  // namespace

Result<bool> Typing(Client& c, std::string_view conv) {
  codec::MapWriter w(1);
  w.Key("conv").Str(conv);
  return Typed<bool>(c.Call(kMsg, codec::msg::kTyping, w.Finish()),
                     [](const codec::Body& b) { return b.GetBool("sent").value_or(true); });
}

Result<Message> Recall(Client& c, std::string_view conv, uint64_t seq) {
  return Typed<Message>(c.Call(kMsg, codec::msg::kRecall, ConvSeq(conv, seq)), MessageField);
}

Result<Message> Edit(Client& c, std::string_view conv, uint64_t seq, std::string_view text) {
  return Typed<Message>(c.Call(kMsg, codec::msg::kEdit, ConvSeq(conv, seq, text)), MessageField);
}

Result<Empty> DeleteForMe(Client& c, std::string_view conv, uint64_t seq) {
  return Typed<Empty>(c.Call(kMsg, codec::msg::kDelete, ConvSeq(conv, seq)),
                      [](const codec::Body&) { return Empty{}; });
}

Result<bool> SetReadReceipts(Client& c, bool on) {
  codec::MapWriter w(1);
  w.Key("read_receipts").Bool(on);
  return Typed<bool>(c.Call(kMsg, codec::msg::kSetPrefs, w.Finish()), [](const codec::Body& b) {
    return b.GetBool("read_receipts").value_or(true);
  });
}

std::optional<ReadReceipt> ReadFromPush(const Push& push) {
  if (push.service != kMsg || push.command != codec::msg::kRead) return std::nullopt;
  try {
    return ReadReceipt{StringIn(push.body.root(), "conv"), UintIn(push.body.root(), "uid"),
                       UintIn(push.body.root(), "seq")};
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

std::optional<Message> UpdatedFromPush(const Push& push) {
  if (push.service != kMsg || push.command != codec::msg::kUpdated) return std::nullopt;
  try {
    return codec::MessageIn(push.body.root());
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

}  // namespace imbus::client

// libFuzzer target: MSG request validation, the pure part of MsgService that runs
// before any database call (msg_rules.h: ParseSend, ParseAck, ParseHistory,
// ParseLimit, ParseConv, IsValidUtf8). A parsed request must be within the limits
// and re-validate to the same fields; a parsed conv id must print back to itself.
// Input layout: fuzz_util.h; command 1 SEND, 2 ACK, 3 SYNC, 4 HISTORY; any other
// command byte feeds the body bytes to ParseConv and IsValidUtf8 as a raw string.
#include <cstddef>
#include <cstdint>
#include <string>

#include "actors/msg/msg_rules.h"
#include "codec/commands.h"
#include "test/fuzz/fuzz_util.h"

namespace imbus::fuzz {
namespace {

using namespace imbus::actors::msg;

std::string Print(const ConvId& id) {
  return id.group ? GroupConv(id.gid) : DirectConv(id.lo, id.hi);
}

void CheckConv(std::string_view conv, const ConvId& id) {
  IMBUS_FUZZ_CHECK(Print(id) == conv);
  if (id.group) {
    IMBUS_FUZZ_CHECK(id.gid > 0);
  } else {
    IMBUS_FUZZ_CHECK(id.lo > 0 && id.lo <= id.hi);
    IMBUS_FUZZ_CHECK(id.HasMember(id.lo) && id.HasMember(id.hi));
  }
}

// Runs `parse`; only RequestError and BadField may come out. True when it parsed.
template <typename F>
bool Validates(F&& parse) {
  try {
    parse();
    return true;
  } catch (const actors::RequestError& e) {
    IMBUS_FUZZ_CHECK(e.code() == codec::Code::kBadRequest || e.code() == codec::Code::kTooLarge);
  } catch (const codec::BadField&) {
  }
  return false;
}

void CheckSend(const codec::Body& body) {
  SendFields f;
  if (!Validates([&] { f = ParseSend(body); })) return;
  IMBUS_FUZZ_CHECK((f.to_uid == 0) != (f.gid == 0));
  IMBUS_FUZZ_CHECK(!f.cmid.empty() && f.cmid.size() <= kMaxCmid);
  IMBUS_FUZZ_CHECK(IsValidUtf8(f.cmid));  // echoed to recipients as a str
  // Text may be empty only beside a file (issue 19: the server then writes one).
  IMBUS_FUZZ_CHECK((!f.text.empty() || !f.file.empty()) && f.text.size() <= kMaxText);
  IMBUS_FUZZ_CHECK(f.file.size() <= kMaxFileId);
  IMBUS_FUZZ_CHECK(IsValidUtf8(f.text));
  // What a client would send for these fields re-validates to the same.
  codec::MapWriter w(f.file.empty() ? 3 : 4);
  if (f.to_uid != 0) {
    w.Key("to").Uint(f.to_uid);
  } else {
    w.Key("gid").Uint(f.gid);
  }
  w.Key("cmid").Str(f.cmid);
  w.Key("text").Str(f.text);
  if (!f.file.empty()) w.Key("file").Str(f.file);
  codec::Body again;
  std::string error;
  IMBUS_FUZZ_CHECK(codec::Body::Parse(w.Finish(), &again, &error));
  const SendFields g = ParseSend(again);  // must not throw
  IMBUS_FUZZ_CHECK(g.to_uid == f.to_uid && g.gid == f.gid && g.cmid == f.cmid && g.text == f.text &&
                   g.file == f.file);
}

}  // namespace
}  // namespace imbus::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imbus;
  using namespace imbus::fuzz;
  Input in;
  if (!SplitInput(data, size, &in)) return 0;
  const bool raw = in.command < codec::msg::kSend || in.command > codec::msg::kHistory;
  if (raw) {
    if (std::optional<ConvId> id = ParseConv(in.body)) CheckConv(in.body, *id);
    if (IsValidUtf8(in.body)) {
      // Any prefix that ends on a code point boundary is valid too.
      size_t cut = in.body.size();
      while (cut > 0 && (static_cast<unsigned char>(in.body[cut - 1]) & 0xC0) == 0x80) --cut;
      if (cut > 0) IMBUS_FUZZ_CHECK(IsValidUtf8(in.body.substr(0, cut - 1)));
    }
    return 0;
  }
  codec::Body body;
  std::string error;
  if (!codec::Body::Parse(in.body, &body, &error)) return 0;
  switch (in.command) {
    case codec::msg::kSend:
      CheckSend(body);
      break;
    case codec::msg::kAck: {
      AckFields f;
      if (Validates([&] { f = ParseAck(body); })) CheckConv(f.conv, f.id);
      break;
    }
    case codec::msg::kSync: {
      uint64_t limit = 0;
      if (Validates([&] { limit = ParseLimit(body, kDefaultSyncLimit, kMaxSyncLimit); })) {
        IMBUS_FUZZ_CHECK(limit >= 1 && limit <= kMaxSyncLimit);
      }
      break;
    }
    case codec::msg::kHistory: {
      HistoryFields f;
      if (Validates([&] { f = ParseHistory(body); })) {
        CheckConv(f.conv, f.id);
        IMBUS_FUZZ_CHECK(f.limit >= 1 && f.limit <= kMaxHistoryLimit);
      }
      break;
    }
  }
  return 0;
}

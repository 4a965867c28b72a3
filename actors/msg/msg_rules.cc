#include "actors/msg/msg_rules.h"

#include <charconv>

#include "actors/service.h"
#include "codec/utf8.h"

namespace imbus::actors::msg {

using codec::Code;

namespace {

// A positive decimal without leading zeros that fills `s` exactly.
std::optional<uint64_t> ParseId(std::string_view s) {
  if (s.empty() || s[0] == '0') return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string DirectConv(uint64_t a, uint64_t b) {
  if (a > b) std::swap(a, b);
  return "d:" + std::to_string(a) + ":" + std::to_string(b);
}

std::string GroupConv(uint64_t gid) { return "g:" + std::to_string(gid); }

std::optional<ConvId> ParseConv(std::string_view conv) {
  ConvId id;
  if (conv.size() > 2 && conv.substr(0, 2) == "g:") {
    auto gid = ParseId(conv.substr(2));
    if (!gid) return std::nullopt;
    id.group = true;
    id.gid = *gid;
    return id;
  }
  if (conv.size() > 2 && conv.substr(0, 2) == "d:") {
    const std::string_view rest = conv.substr(2);
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto lo = ParseId(rest.substr(0, colon));
    auto hi = ParseId(rest.substr(colon + 1));
    if (!lo || !hi || *lo > *hi) return std::nullopt;
    id.lo = *lo;
    id.hi = *hi;
    return id;
  }
  return std::nullopt;
}

bool IsValidUtf8(std::string_view text) { return codec::IsValidUtf8(text); }

SendFields ParseSend(const codec::Body& body) {
  SendFields f;
  const std::optional<uint64_t> to = body.GetUint("to");
  const std::optional<uint64_t> gid = body.GetUint("gid");
  if (to.has_value() == gid.has_value()) {
    throw RequestError(Code::kBadRequest, "give exactly one of 'to' (uid) or 'gid'");
  }
  if (to && *to == 0) throw RequestError(Code::kBadRequest, "'to' must be a positive uid");
  if (gid && *gid == 0) throw RequestError(Code::kBadRequest, "'gid' must be a positive gid");
  f.to_uid = to.value_or(0);
  f.gid = gid.value_or(0);
  f.cmid = body.RequireString("cmid");
  if (f.cmid.empty() || f.cmid.size() > kMaxCmid) {
    throw RequestError(Code::kBadRequest, "cmid must be 1-64 bytes");
  }
  // Recipients get the cmid back as a msgpack str: it must decode as text for them.
  if (!IsValidUtf8(f.cmid)) throw RequestError(Code::kBadRequest, "cmid is not valid UTF-8");
  // Issue 19: with a file, text may be left out (the service then writes one).
  f.file = body.GetString("file").value_or("");
  if (body.Has("file") && (f.file.empty() || f.file.size() > kMaxFileId)) {
    throw RequestError(Code::kBadRequest, "file must be a file id of 1-64 bytes");
  }
  if (f.file.empty()) {
    f.text = body.RequireString("text");
    if (f.text.empty()) throw RequestError(Code::kBadRequest, "text must not be empty");
  } else {
    f.text = body.GetString("text").value_or("");
  }
  if (f.text.size() > kMaxText) {
    throw RequestError(Code::kTooLarge, "text is longer than 8192 bytes");
  }
  if (!IsValidUtf8(f.text)) throw RequestError(Code::kBadRequest, "text is not valid UTF-8");
  return f;
}

uint64_t ParseLimit(const codec::Body& body, uint64_t def, uint64_t max) {
  const std::optional<uint64_t> limit = body.GetUint("limit");
  if (!limit) return def;
  if (*limit < 1 || *limit > max) {
    throw RequestError(Code::kBadRequest, "limit must be 1-" + std::to_string(max));
  }
  return *limit;
}

namespace {
ConvId RequireConv(const std::string& conv) {
  std::optional<ConvId> id = ParseConv(conv);
  if (!id) throw RequestError(Code::kBadRequest, "malformed conv");
  return *id;
}
}  // namespace

AckFields ParseAck(const codec::Body& body) {
  AckFields f;
  f.conv = body.RequireString("conv");
  f.seq = body.RequireUint("seq");
  f.id = RequireConv(f.conv);
  return f;
}

HistoryFields ParseHistory(const codec::Body& body) {
  HistoryFields f;
  f.conv = body.RequireString("conv");
  f.before = body.GetUint("before").value_or(0);
  f.limit = ParseLimit(body, kDefaultHistoryLimit, kMaxHistoryLimit);
  f.id = RequireConv(f.conv);
  return f;
}

}  // namespace imbus::actors::msg

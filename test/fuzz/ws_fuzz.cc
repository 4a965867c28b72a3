// libFuzzer target: what a browser-facing edge port reads before and after the
// upgrade. Byte 0 picks the part: even, the WebSocket framing (net::WsSession as a
// server with small limits), fed all at once and in pseudo-random splits (byte 1 is
// the seed): they must agree on the messages delivered (within the limits) and on
// how they end; odd, the HTTP request head (edge/http.h): the parser, the upgrade check and
// the static-file answer must not crash and must answer a well-formed response.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edge/http.h"
#include "net/ws_session.h"

namespace {

using imbus::net::WsSession;

struct Outcome {
  std::vector<WsSession::Message> messages;
  bool failed = false;
  uint16_t close_code = 0;
  std::string output;
};

Outcome Run(const std::string& bytes, uint8_t seed) {
  WsSession s(WsSession::Role::kServer, WsSession::Limits{512, 8});
  Outcome o;
  size_t pos = 0;
  uint32_t x = seed | 1u;
  while (pos < bytes.size()) {
    size_t n = bytes.size() - pos;
    if (seed != 0) {
      x = x * 1103515245u + 12345u;
      n = std::min<size_t>(n, 1 + (x >> 16) % 37);
    }
    if (!s.Feed(bytes.data() + pos, n, &o.messages)) {
      o.failed = true;
      break;
    }
    pos += n;
  }
  o.close_code = s.close_code_sent();
  s.Output(&o.output);
  return o;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  if ((data[0] & 1) == 0) {
    const Outcome whole = Run(bytes, 0);
    const Outcome split = Run(bytes, data[1]);
    // A frame cut short may be judged early in one run and not yet in the other
    // (wslay checks a close reason's UTF-8 as it arrives): the messages delivered
    // must agree as far as both got, and fully when both ended the same way.
    const size_t common = std::min(whole.messages.size(), split.messages.size());
    for (size_t i = 0; i < common; ++i) {
      Check(whole.messages[i].data == split.messages[i].data);
      Check(whole.messages[i].type == split.messages[i].type);
    }
    for (const Outcome* o : {&whole, &split}) {
      for (const auto& m : o->messages) Check(m.data.size() <= 512);
    }
    if (whole.failed == split.failed) {
      Check(whole.messages.size() == split.messages.size());
      // Failed both: a failure close either way (wslay may call a cut-short close
      // reason invalid UTF-8, 1007, or a protocol error, 1002, by where it was cut).
      if (whole.failed) {
        for (const Outcome* o : {&whole, &split}) {
          Check(o->close_code == 1002 || o->close_code == 1007 || o->close_code == 1009);
        }
      }
    }
    return 0;
  }
  imbus::edge::HttpRequest r;
  size_t used = 0;
  std::string error;
  if (imbus::edge::ParseHttpRequest(bytes, &r, &used, &error) != imbus::edge::HttpParse::kOk) {
    return 0;
  }
  Check(used <= bytes.size() && used <= imbus::edge::kMaxHttpHead);
  std::string answer;
  if (imbus::edge::IsWsUpgradeRequest(r)) {
    answer = imbus::edge::CheckWsUpgrade(r, {}).response;
  } else {
    answer = imbus::edge::ServeStatic(nullptr, r);
  }
  Check(answer.rfind("HTTP/1.1 ", 0) == 0 && answer.find("\r\n\r\n") != std::string::npos);
  return 0;
}

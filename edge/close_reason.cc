#include "edge/close_reason.h"

namespace imbus::edge {

std::string_view CloseReasonText(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed:
      return "peer closed";
    case CloseReason::kAfterFinalOutput:
      return "closed after final output";
    case CloseReason::kWriteError:
      return "write error (peer gone)";
    case CloseReason::kReadError:
      return "read error";
    case CloseReason::kTlsError:
      return "TLS error";
    case CloseReason::kTlsHandshakeFailed:
      return "TLS handshake failed";
    case CloseReason::kSlowReader:
      return "slow reader";
    case CloseReason::kIdle:
      return "idle for";
    case CloseReason::kCloseGraceExpired:
      return "peer did not finish closing in time";
    case CloseReason::kShuttingDown:
      return "edge shutting down";
    case CloseReason::kBrokenStream:
      return "broken stream";
    case CloseReason::kKicked:
      return "kicked";
    case CloseReason::kWsClosedByPeer:
      return "WebSocket closed by the client";
    case CloseReason::kWsError:
      return "WebSocket error";
    case CloseReason::kHttpDone:
      return "HTTP answer sent";
  }
  return "unknown";
}

bool IsQuietClose(CloseReason reason) {
  return reason == CloseReason::kPeerClosed || reason == CloseReason::kAfterFinalOutput ||
         reason == CloseReason::kWsClosedByPeer || reason == CloseReason::kHttpDone;
}

std::string DescribeClose(CloseReason reason, std::string_view detail) {
  std::string out(CloseReasonText(reason));
  if (!detail.empty()) {
    out += reason == CloseReason::kIdle ? " " : ": ";
    out += detail;
  }
  return out;
}

}  // namespace imbus::edge

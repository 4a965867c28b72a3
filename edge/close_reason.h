// Internal to edge/. CloseReason: why the edge closes a client connection, as a value
// (counted, logged, decided on) rather than a string compared. A detail (an errno
// text, a kick reason) may go with it into the log line.
#pragma once

#include <string>
#include <string_view>

namespace imbus::edge {

enum class CloseReason {
  kPeerClosed,          // the client closed first
  kAfterFinalOutput,    // our output drained, then the client's EOF (CloseAfterFlush)
  kWriteError,          // the peer is gone
  kReadError,           // detail: strerror
  kTlsError,            // detail: the OpenSSL error text
  kTlsHandshakeFailed,  // detail: the OpenSSL error text
  kSlowReader,          // detail: the output limit
  kIdle,                // detail: the idle timeout
  kCloseGraceExpired,   // a closing peer never sent its EOF
  kShuttingDown,        // the edge stops
  kBrokenStream,        // a frame that cannot be decoded (SYS/ERROR sent)
  kKicked,              // detail: the broker's reason
  kWsClosedByPeer,      // the client sent a WebSocket close (echoed)
  kWsError,             // detail: the WebSocket protocol error or limit (close frame sent)
  kHttpDone,            // an HTTP answer that ends the connection (an error, Connection: close)
};

// The text logged for `reason` ("slow reader", "idle for", ...).
std::string_view CloseReasonText(CloseReason reason);
// The normal ends of a connection, logged at debug level only.
bool IsQuietClose(CloseReason reason);
// "<text>" or "<text>: <detail>" ("idle for <detail>" for kIdle).
std::string DescribeClose(CloseReason reason, std::string_view detail);

}  // namespace imbus::edge

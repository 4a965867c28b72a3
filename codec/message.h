// Public. Message: one stored chat message as the MSG service keeps it and sends it
// (in SYNC and HISTORY answers and MESSAGE pushes, docs/protocol.md), declared once
// for the server (actors/msg) and the client (client/msg_api.h).
#pragma once

#include <cstdint>
#include <string>

#include <msgpack.hpp>

namespace imbus::codec {

struct Message {
  std::string conv;
  uint64_t seq = 0;
  uint64_t from = 0;
  int64_t ts = 0;
  std::string text;
  std::string cmid;
  uint64_t gid = 0;  // 0 in direct conversations (and then absent on the wire)
  // Issue 18, absent on the wire unless set: recalled by its sender (text is then
  // empty), or edited at edited_ts (text is the edited text).
  bool recalled = false;
  int64_t edited_ts = 0;
};

// Reads one message map (text and cmid may be str or bin). Throws BadField when a
// field is missing or ill-typed.
Message MessageIn(const msgpack::object& map);

class MapWriter;
// Writes one message map (six fields; gid in groups, recalled and edited_ts when set) as the next
// value of `w`: the one writer of the message's wire shape.
void MessageOut(MapWriter& w, const Message& m);
// The message map as a whole body (a MESSAGE push).
std::string MessageBody(const Message& m);

}  // namespace imbus::codec

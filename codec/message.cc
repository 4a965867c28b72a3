#include "codec/message.h"

#include "codec/body.h"

namespace imbus::codec {

Message MessageIn(const msgpack::object& map) {
  Message m;
  m.conv = StringIn(map, "conv");
  m.seq = UintIn(map, "seq");
  m.from = UintIn(map, "from");
  m.ts = IntIn(map, "ts");
  m.text = BytesIn(map, "text");
  m.cmid = BytesIn(map, "cmid");
  if (FieldIn(map, "gid") != nullptr) m.gid = UintIn(map, "gid");
  return m;
}

}  // namespace imbus::codec

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

namespace {

void MessageFields(MapWriter& w, const Message& m) {
  w.Key("conv").Str(m.conv);
  w.Key("seq").Uint(m.seq);
  w.Key("from").Uint(m.from);
  w.Key("ts").Int(m.ts);
  w.Key("text").Str(m.text);
  w.Key("cmid").Str(m.cmid);
  if (m.gid != 0) w.Key("gid").Uint(m.gid);
}

uint32_t FieldCount(const Message& m) { return m.gid != 0 ? 7 : 6; }

}  // namespace

void MessageOut(MapWriter& w, const Message& m) {
  w.packer().pack_map(FieldCount(m));
  MessageFields(w, m);
}

std::string MessageBody(const Message& m) {
  MapWriter w(FieldCount(m));
  MessageFields(w, m);
  return w.Finish();
}

}  // namespace imbus::codec

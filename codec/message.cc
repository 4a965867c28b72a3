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
  if (const msgpack::object* r = FieldIn(map, "recalled");
      r != nullptr && r->type == msgpack::type::BOOLEAN) {
    m.recalled = r->via.boolean;
  }
  if (FieldIn(map, "edited_ts") != nullptr) m.edited_ts = IntIn(map, "edited_ts");
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
  if (m.recalled) w.Key("recalled").Bool(true);
  if (m.edited_ts != 0) w.Key("edited_ts").Int(m.edited_ts);
}

uint32_t FieldCount(const Message& m) {
  return 6 + (m.gid != 0 ? 1 : 0) + (m.recalled ? 1 : 0) + (m.edited_ts != 0 ? 1 : 0);
}

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

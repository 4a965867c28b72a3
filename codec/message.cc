#include "codec/message.h"

#include "codec/body.h"

namespace imbus::codec {

FileObject FileObjectIn(const msgpack::object& map) {
  FileObject f;
  f.file = StringIn(map, "file");
  f.name = BytesIn(map, "name");
  f.size = UintIn(map, "size");
  f.mime = StringIn(map, "mime");
  f.sha256 = BytesIn(map, "sha256");
  f.from = UintIn(map, "from");
  f.ts = IntIn(map, "ts");
  if (FieldIn(map, "width") != nullptr) f.width = static_cast<uint32_t>(UintIn(map, "width"));
  if (FieldIn(map, "height") != nullptr) f.height = static_cast<uint32_t>(UintIn(map, "height"));
  return f;
}

uint32_t FileObjectFieldCount(const FileObject& f) {
  return 7 + (f.width != 0 && f.height != 0 ? 2 : 0);
}

void FileObjectFields(MapWriter& w, const FileObject& f) {
  w.Key("file").Str(f.file);
  w.Key("name").Str(f.name);
  w.Key("size").Uint(f.size);
  w.Key("mime").Str(f.mime);
  w.Key("sha256");
  w.packer().pack_bin(static_cast<uint32_t>(f.sha256.size()));
  w.packer().pack_bin_body(f.sha256.data(), static_cast<uint32_t>(f.sha256.size()));
  w.Key("from").Uint(f.from);
  w.Key("ts").Int(f.ts);
  if (f.width != 0 && f.height != 0) {
    w.Key("width").Uint(f.width);
    w.Key("height").Uint(f.height);
  }
}

void FileObjectOut(MapWriter& w, const FileObject& f) {
  w.packer().pack_map(FileObjectFieldCount(f));
  FileObjectFields(w, f);
}

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
  if (const msgpack::object* f = FieldIn(map, "file");
      f != nullptr && f->type == msgpack::type::MAP) {
    m.file = FileObjectIn(*f);
  }
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
  if (m.file) {
    w.Key("file");
    FileObjectOut(w, *m.file);
  }
}

uint32_t FieldCount(const Message& m) {
  return 6 + (m.gid != 0 ? 1 : 0) + (m.recalled ? 1 : 0) + (m.edited_ts != 0 ? 1 : 0) +
         (m.file ? 1 : 0);
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

// Public. Message: one stored chat message as the MSG service keeps it and sends it
// (in SYNC and HISTORY answers and MESSAGE pushes, docs/protocol.md), declared once
// for the server (actors/msg) and the client (client/msg_api.h). FileObject: a file
// object (docs/protocol.md 6.9), as a message carries it and as FILE answers it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <msgpack.hpp>

namespace imbus::codec {

class MapWriter;

// Issue 19: `{file, name, size, mime, sha256, from, ts}` plus width/height (pixels)
// when known.
struct FileObject {
  std::string file;  // the file id
  std::string name;
  uint64_t size = 0;
  std::string mime;
  std::string sha256;  // 32 bytes (bin on the wire)
  uint64_t from = 0;   // the uploader's uid
  int64_t ts = 0;      // when the upload finished, ms
  // 0: unknown (absent on the wire).
  uint32_t width = 0;
  uint32_t height = 0;
};

// Reads one file object map. Throws BadField when a field is missing or ill-typed.
FileObject FileObjectIn(const msgpack::object& map);
// The number of fields FileObjectFields writes (7, 9 with width and height).
uint32_t FileObjectFieldCount(const FileObject& f);
// Writes the fields (keys and values) into a map `w` already counts them in: a FILE
// answer is `{code, <these>}`.
void FileObjectFields(MapWriter& w, const FileObject& f);
// Writes one file object map as the next value of `w`.
void FileObjectOut(MapWriter& w, const FileObject& f);

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
  // Issue 19, absent on the wire unless set: the file the message carries.
  std::optional<FileObject> file;
};

// Reads one message map (text and cmid may be str or bin). Throws BadField when a
// field is missing or ill-typed.
Message MessageIn(const msgpack::object& map);

// Writes one message map (six fields; gid in groups, recalled, edited_ts and file when set) as the
// next value of `w`: the one writer of the message's wire shape.
void MessageOut(MapWriter& w, const Message& m);
// The message map as a whole body (a MESSAGE push).
std::string MessageBody(const Message& m);

}  // namespace imbus::codec

// libFuzzer target: the client byte stream as the edge sees it. Bytes go into a
// FrameDecoder twice, all at once and in pseudo-random splits (as TCP may deliver
// them), and both must yield the same frames and the same end state. Each frame must
// re-encode to its bytes; its body goes through Body::Parse and every typed getter.
//
// Input: byte 0 = config (bit 0: server sender, bit 1: max_frame 256 instead of
// 64 KiB), byte 1 = split seed, the rest = the stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"
#include "test/fuzz/fuzz_util.h"

namespace imbus::fuzz {
namespace {

using codec::Body;
using codec::Frame;
using codec::FrameDecoder;

struct Decoded {
  std::vector<Frame> frames;
  bool broken = false;
  std::string error;
  size_t buffered = 0;
};

// Drains every whole frame; true while the stream is usable.
bool Drain(FrameDecoder& d, Decoded* out) {
  for (;;) {
    Frame f;
    switch (d.Next(&f)) {
      case FrameDecoder::Status::kFrame:
        out->frames.push_back(std::move(f));
        break;
      case FrameDecoder::Status::kNeedMore:
        return true;
      case FrameDecoder::Status::kBroken:
        out->broken = true;
        out->error = d.error();
        IMBUS_FUZZ_CHECK(!out->error.empty());
        IMBUS_FUZZ_CHECK(d.Next(&f) == FrameDecoder::Status::kBroken);  // final
        return false;
    }
  }
}

void CheckGetters(const Body& body, std::string_view key) {
  const msgpack::object* o = body.Find(key);
  const auto type = o == nullptr ? msgpack::type::NIL : o->type;
  try {
    const auto u = body.GetUint(key);
    IMBUS_FUZZ_CHECK(o == nullptr ? !u : type == msgpack::type::POSITIVE_INTEGER);
  } catch (const codec::BadField&) {
    IMBUS_FUZZ_CHECK(o != nullptr && type != msgpack::type::POSITIVE_INTEGER);
  }
  try {
    const auto i = body.GetInt(key);
    IMBUS_FUZZ_CHECK(o == nullptr ? !i : (*i < 0) == (type == msgpack::type::NEGATIVE_INTEGER));
  } catch (const codec::BadField&) {
    IMBUS_FUZZ_CHECK(o != nullptr);
  }
  try {
    const auto s = body.GetString(key);
    IMBUS_FUZZ_CHECK(o == nullptr ? !s : type == msgpack::type::STR || type == msgpack::type::BIN);
    if (s) IMBUS_FUZZ_CHECK(s->size() <= 65536);  // BodyLimits
  } catch (const codec::BadField&) {
    IMBUS_FUZZ_CHECK(o != nullptr);
  }
  try {
    const auto b = body.GetBool(key);
    IMBUS_FUZZ_CHECK(o == nullptr ? !b : type == msgpack::type::BOOLEAN);
  } catch (const codec::BadField&) {
    IMBUS_FUZZ_CHECK(o != nullptr);
  }
  try {
    body.RequireUint(key);
    IMBUS_FUZZ_CHECK(o != nullptr);
  } catch (const codec::BadField&) {
  }
  try {
    body.RequireString(key);
    IMBUS_FUZZ_CHECK(o != nullptr);
  } catch (const codec::BadField&) {
  }
}

// What the edge (Body::Parse, the command table, ERROR answers) and the services
// (typed getters) do with a frame body.
void CheckBody(const Frame& frame) {
  Body body;
  std::string error;
  if (!Body::Parse(frame.body, &body, &error)) {
    IMBUS_FUZZ_CHECK(!error.empty());
    Body answer;  // the BAD_REQUEST answer quoting the reason must itself parse
    IMBUS_FUZZ_CHECK(
        Body::Parse(codec::ErrorBody(codec::Code::kBadRequest, error), &answer, &error));
    return;
  }
  const msgpack::object& root = body.root();
  IMBUS_FUZZ_CHECK(root.type == msgpack::type::MAP);
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object& k = root.via.map.ptr[i].key;
    IMBUS_FUZZ_CHECK(k.type == msgpack::type::STR);
    CheckGetters(body, std::string_view(k.via.str.ptr, k.via.str.size));
  }
  for (const char* key : {"code", "error", "uid", "name", "token", "conv", "seq", "text"}) {
    CheckGetters(body, key);
  }
  // A parsed body packs back into one that parses to a map of the same size.
  msgpack::sbuffer repacked;
  msgpack::pack(repacked, root);
  Body again;
  IMBUS_FUZZ_CHECK(Body::Parse(std::string_view(repacked.data(), repacked.size()), &again, &error));
  IMBUS_FUZZ_CHECK(again.root().via.map.size == root.via.map.size);

  const codec::CommandInfo* info = codec::FindCommand(frame.header.service, frame.header.command);
  if (info != nullptr) {
    IMBUS_FUZZ_CHECK(codec::ToWire(info->service) == frame.header.service);
    IMBUS_FUZZ_CHECK(info->command == frame.header.command);
  }
}

}  // namespace
}  // namespace imbus::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imbus;
  using namespace imbus::fuzz;
  if (size < 2) return 0;
  const auto sender = (data[0] & 1u) != 0 ? codec::FrameDecoder::Sender::kServer
                                          : codec::FrameDecoder::Sender::kClient;
  const uint32_t max_frame = (data[0] & 2u) != 0 ? 256 : codec::kDefaultMaxFrame;
  uint32_t rng = data[1] * 2654435761u + 1;
  const char* stream = reinterpret_cast<const char*>(data) + 2;
  const size_t n = size - 2;

  codec::FrameDecoder whole(sender, max_frame);
  Decoded a;
  whole.Feed(stream, n);
  Drain(whole, &a);
  a.buffered = whole.buffered();

  codec::FrameDecoder split(sender, max_frame);
  Decoded b;
  size_t fed = 0;
  while (fed < n) {
    rng = rng * 1103515245u + 12345u;
    const size_t chunk = std::min<size_t>(n - fed, 1 + (rng >> 16) % 40);
    split.Feed(stream + fed, chunk);
    fed += chunk;
    if (!Drain(split, &b)) break;
    split.ShrinkIfEmpty();
  }
  b.buffered = split.buffered();

  IMBUS_FUZZ_CHECK(a.frames.size() == b.frames.size());
  IMBUS_FUZZ_CHECK(a.broken == b.broken);
  IMBUS_FUZZ_CHECK(a.error == b.error);
  IMBUS_FUZZ_CHECK(a.broken || a.buffered == b.buffered);

  size_t offset = 0;
  const uint16_t allowed = sender == codec::FrameDecoder::Sender::kClient ? 0 : codec::kKnownFlags;
  for (size_t i = 0; i < a.frames.size(); ++i) {
    const codec::Frame& f = a.frames[i];
    IMBUS_FUZZ_CHECK(f.header.length == codec::kHeaderSize + f.body.size());
    IMBUS_FUZZ_CHECK(f.header.length <= max_frame);
    IMBUS_FUZZ_CHECK(f.header.version == codec::kProtocolVersion);
    IMBUS_FUZZ_CHECK((f.header.flags & ~allowed) == 0);
    IMBUS_FUZZ_CHECK(f.body == b.frames[i].body);
    const std::string bytes = codec::EncodeFrame(f.header.flags, f.header.service, f.header.command,
                                                 f.header.seq, f.body);
    IMBUS_FUZZ_CHECK(std::string_view(stream + offset, bytes.size()) == bytes);
    offset += bytes.size();
    CheckBody(f);
  }
  if (!a.broken) IMBUS_FUZZ_CHECK(offset + a.buffered == n);
  return 0;
}

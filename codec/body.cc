#include "codec/body.h"

#include <limits>

namespace imbus::codec {

msgpack::unpack_limit BodyLimits() {
  // array, map, str, bin, ext, depth. A frame is at most 64 KiB, so no container can
  // honestly hold more elements than that; ext is never used by the protocol.
  return msgpack::unpack_limit(4096, 1024, 65536, 65536, 0, 16);
}

bool Body::Parse(std::string_view bytes, Body* out, std::string* error) {
  if (bytes.empty()) {
    *error = "body is empty; it must be one msgpack map (0x80 when empty)";
    return false;
  }
  size_t offset = 0;
  try {
    out->handle_ =
        msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, BodyLimits());
  } catch (const msgpack::insufficient_bytes&) {
    *error = "body is a truncated msgpack value";
    return false;
  } catch (const msgpack::depth_size_overflow&) {
    *error = "body nests too deeply";
    return false;
  } catch (const msgpack::size_overflow& e) {
    *error = std::string("body exceeds a msgpack size limit (") + e.what() + ")";
    return false;
  } catch (const std::exception& e) {
    *error = std::string("body is not valid msgpack (") + e.what() + ")";
    return false;
  }
  if (offset != bytes.size()) {
    *error = "body has " + std::to_string(bytes.size() - offset) +
             " trailing bytes after the msgpack map";
    return false;
  }
  const msgpack::object& root = out->handle_.get();
  if (root.type != msgpack::type::MAP) {
    *error = "body is not a msgpack map";
    return false;
  }
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    if (root.via.map.ptr[i].key.type != msgpack::type::STR) {
      *error = "body map has a key that is not a string";
      return false;
    }
  }
  return true;
}

const msgpack::object* Body::Find(std::string_view key) const {
  const msgpack::object* v = FieldIn(handle_.get(), key);
  return v != nullptr && v->type == msgpack::type::NIL ? nullptr : v;
}

std::optional<uint64_t> Body::GetUint(std::string_view key) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return std::nullopt;
  if (o->type == msgpack::type::POSITIVE_INTEGER) return o->via.u64;
  throw BadField("field '" + std::string(key) + "' must be a non-negative integer");
}

std::optional<int64_t> Body::GetInt(std::string_view key) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return std::nullopt;
  if (o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
  if (o->type == msgpack::type::POSITIVE_INTEGER &&
      o->via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(o->via.u64);
  }
  throw BadField("field '" + std::string(key) + "' must be an integer");
}

std::optional<std::string> Body::GetString(std::string_view key) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return std::nullopt;
  if (o->type == msgpack::type::STR) return std::string(o->via.str.ptr, o->via.str.size);
  if (o->type == msgpack::type::BIN) return std::string(o->via.bin.ptr, o->via.bin.size);
  throw BadField("field '" + std::string(key) + "' must be a string");
}

std::optional<bool> Body::GetBool(std::string_view key) const {
  const msgpack::object* o = Find(key);
  if (o == nullptr) return std::nullopt;
  if (o->type == msgpack::type::BOOLEAN) return o->via.boolean;
  throw BadField("field '" + std::string(key) + "' must be a boolean");
}

uint64_t Body::RequireUint(std::string_view key) const {
  auto v = GetUint(key);
  if (!v) throw BadField("field '" + std::string(key) + "' is required");
  return *v;
}

std::string Body::RequireString(std::string_view key) const {
  auto v = GetString(key);
  if (!v) throw BadField("field '" + std::string(key) + "' is required");
  return *v;
}

std::string ErrorBody(Code code, std::string_view error) {
  MapWriter w(2);
  w.Key("code").Int(static_cast<int>(code));
  w.Key("error").Str(error);
  return w.Finish();
}

std::string RateLimitedBody(int64_t retry_ms, std::string_view error) {
  MapWriter w(3);
  w.Key("code").Int(static_cast<int>(Code::kRateLimited));
  w.Key("error").Str(error);
  w.Key("retry_ms").Int(retry_ms);
  return w.Finish();
}

std::string OkBody() {
  MapWriter w(1);
  w.Key("code").Int(0);
  return w.Finish();
}

const msgpack::object* FieldIn(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object_kv& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

uint64_t UintIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) {
    throw BadField("field '" + std::string(key) + "' must be a non-negative integer");
  }
  return o->via.u64;
}

std::string StringIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o == nullptr || o->type != msgpack::type::STR) {
    throw BadField("field '" + std::string(key) + "' must be a string");
  }
  return std::string(o->via.str.ptr, o->via.str.size);
}

int64_t IntIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o != nullptr && o->type == msgpack::type::POSITIVE_INTEGER &&
      o->via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(o->via.u64);
  }
  if (o != nullptr && o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
  throw BadField("field '" + std::string(key) + "' must be an integer");
}

std::string BytesIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o != nullptr && o->type == msgpack::type::BIN) {
    return std::string(o->via.bin.ptr, o->via.bin.size);
  }
  return StringIn(map, key);
}

bool BoolIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o == nullptr || o->type != msgpack::type::BOOLEAN) {
    throw BadField("field '" + std::string(key) + "' must be a boolean");
  }
  return o->via.boolean;
}

namespace {
std::vector<const msgpack::object*> Elements(const msgpack::object* a, std::string_view key) {
  std::vector<const msgpack::object*> out;
  if (a == nullptr || a->type == msgpack::type::NIL) return out;
  if (a->type != msgpack::type::ARRAY) {
    throw BadField("field '" + std::string(key) + "' must be an array");
  }
  for (uint32_t i = 0; i < a->via.array.size; ++i) out.push_back(&a->via.array.ptr[i]);
  return out;
}
}  // namespace

std::vector<const msgpack::object*> ArrayOf(const Body& body, std::string_view key) {
  return Elements(body.Find(key), key);
}

std::vector<const msgpack::object*> ArrayIn(const msgpack::object& map, std::string_view key) {
  return Elements(FieldIn(map, key), key);
}

}  // namespace imbus::codec

// Public. Frame bodies: one msgpack map with string keys. Parsing always goes
// through msgpack::unpack_limit so a 5-byte "array of 2^32 elements" costs nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "codec/codes.h"

namespace imbus::codec {

// Thrown by the Body getters when a field is present with the wrong type; the actor
// host turns it into BAD_REQUEST. It never leaves a request handler.
class BadField : public std::runtime_error {
 public:
  explicit BadField(const std::string& what) : std::runtime_error(what) {}
};

// Limits for untrusted msgpack. Sized for frames of at most 64 KiB.
msgpack::unpack_limit BodyLimits();

// A parsed body. Owns its zone; movable, not copyable.
class Body {
 public:
  Body() = default;
  Body(Body&&) = default;
  Body& operator=(Body&&) = default;
  Body(const Body&) = delete;
  Body& operator=(const Body&) = delete;

  // Parses `bytes` as exactly one msgpack map whose keys are all strings. On failure
  // returns false and says why in *error (for a BAD_REQUEST answer).
  static bool Parse(std::string_view bytes, Body* out, std::string* error);

  // The value under `key`, or nullptr.
  const msgpack::object* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters: nullopt when absent (or nil); BadField when present with another
  // type (or a negative number for an unsigned field).
  std::optional<uint64_t> GetUint(std::string_view key) const;
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;  // str or bin
  std::optional<bool> GetBool(std::string_view key) const;

  // Same, but a missing field is a BadField too.
  uint64_t RequireUint(std::string_view key) const;
  std::string RequireString(std::string_view key) const;

  const msgpack::object& root() const { return handle_.get(); }

 private:
  msgpack::object_handle handle_;
};

// Fields of a nested map (an element of an array in a body, a map inside a map):
// each reader throws BadField when the field is missing or has another type.
const msgpack::object* FieldIn(const msgpack::object& map, std::string_view key);
uint64_t UintIn(const msgpack::object& map, std::string_view key);
int64_t IntIn(const msgpack::object& map, std::string_view key);
std::string StringIn(const msgpack::object& map, std::string_view key);
std::string BytesIn(const msgpack::object& map, std::string_view key);  // str or bin
bool BoolIn(const msgpack::object& map, std::string_view key);
// The elements of the array under `key` (absent or nil: none; BadField when not an
// array), in a body or in a nested map.
std::vector<const msgpack::object*> ArrayOf(const Body& body, std::string_view key);
std::vector<const msgpack::object*> ArrayIn(const msgpack::object& map, std::string_view key);

// Writes a map body. Use: MapWriter w(2); w.Key("code").Int(0)...; w.Finish().
// The caller states the number of fields up front (msgpack needs it); packer()
// gives access for nested arrays and maps.
class MapWriter {
 public:
  explicit MapWriter(uint32_t fields) : pk_(buf_) { pk_.pack_map(fields); }
  MapWriter(const MapWriter&) = delete;
  MapWriter& operator=(const MapWriter&) = delete;

  MapWriter& Key(std::string_view k) {
    pk_.pack_str(static_cast<uint32_t>(k.size()));
    pk_.pack_str_body(k.data(), static_cast<uint32_t>(k.size()));
    return *this;
  }
  MapWriter& Str(std::string_view v) {
    pk_.pack_str(static_cast<uint32_t>(v.size()));
    pk_.pack_str_body(v.data(), static_cast<uint32_t>(v.size()));
    return *this;
  }
  MapWriter& Uint(uint64_t v) {
    pk_.pack_uint64(v);
    return *this;
  }
  MapWriter& Int(int64_t v) {
    pk_.pack_int64(v);
    return *this;
  }
  MapWriter& Bool(bool v) {
    if (v) {
      pk_.pack_true();
    } else {
      pk_.pack_false();
    }
    return *this;
  }
  msgpack::packer<msgpack::sbuffer>& packer() { return pk_; }
  std::string Finish() const { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_;
};

// `{code, error}` — the body of every failed response.
std::string ErrorBody(Code code, std::string_view error);
// `{code: 6 (RATE_LIMITED), error, retry_ms}`: refused by a rate limit; a token
// will be there in `retry_ms` milliseconds.
std::string RateLimitedBody(int64_t retry_ms, std::string_view error);
// `{code: 0}`.
std::string OkBody();
// `{}`.
inline std::string EmptyBody() { return std::string("\x80", 1); }

}  // namespace imbus::codec

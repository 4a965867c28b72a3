#include "client/wire.h"

namespace imbus::client {

namespace wire {

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
    throw codec::BadField("field '" + std::string(key) + "' must be a non-negative integer");
  }
  return o->via.u64;
}

std::string StringIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o == nullptr || o->type != msgpack::type::STR) {
    throw codec::BadField("field '" + std::string(key) + "' must be a string");
  }
  return std::string(o->via.str.ptr, o->via.str.size);
}

bool BoolIn(const msgpack::object& map, std::string_view key) {
  const msgpack::object* o = FieldIn(map, key);
  if (o == nullptr || o->type != msgpack::type::BOOLEAN) {
    throw codec::BadField("field '" + std::string(key) + "' must be a boolean");
  }
  return o->via.boolean;
}

namespace {
std::vector<const msgpack::object*> Elements(const msgpack::object* a, std::string_view key) {
  std::vector<const msgpack::object*> out;
  if (a == nullptr || a->type == msgpack::type::NIL) return out;
  if (a->type != msgpack::type::ARRAY) {
    throw codec::BadField("field '" + std::string(key) + "' must be an array");
  }
  for (uint32_t i = 0; i < a->via.array.size; ++i) out.push_back(&a->via.array.ptr[i]);
  return out;
}
}  // namespace

std::vector<const msgpack::object*> ArrayOf(const codec::Body& body, std::string_view key) {
  return Elements(body.Find(key), key);
}

std::vector<const msgpack::object*> ArrayIn(const msgpack::object& map, std::string_view key) {
  return Elements(FieldIn(map, key), key);
}

}  // namespace wire

}  // namespace imbus::client

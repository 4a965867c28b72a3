// Public. Reading typed fields out of response bodies (nested maps and arrays), and
// turning a Response into a Result<T>; shared by every typed API of the client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "client/client.h"
#include "codec/body.h"

namespace imbus::client {

// Each field reader throws codec::BadField when the field is missing or ill-typed.
namespace wire {
const msgpack::object* FieldIn(const msgpack::object& map, std::string_view key);
uint64_t UintIn(const msgpack::object& map, std::string_view key);
std::string StringIn(const msgpack::object& map, std::string_view key);
bool BoolIn(const msgpack::object& map, std::string_view key);
// The array under `key` of a body (absent: empty).
std::vector<const msgpack::object*> ArrayOf(const codec::Body& body, std::string_view key);
std::vector<const msgpack::object*> ArrayIn(const msgpack::object& map, std::string_view key);

// Turns a Response into a Result<T>: failures keep their code and error; on OK,
// parse(body) fills the value, and a BadField makes it kCodeBadResponse.
template <typename T, typename Parse>
Result<T> Typed(Response r, Parse parse) {
  Result<T> out;
  out.code = r.code;
  out.error = std::move(r.error);
  out.retry_ms = r.retry_ms;
  if (!r.ok()) return out;
  try {
    out.value = parse(r.body);
  } catch (const codec::BadField& e) {
    out.code = kCodeBadResponse;
    out.error = std::string("bad response body: ") + e.what();
  }
  return out;
}
}  // namespace wire

}  // namespace imbus::client

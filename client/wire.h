// Public. Turning a Response into a Result<T>, and reading every page of a paged
// list; shared by every typed API of the client. The field readers they use are
// codec/body.h's (FieldIn, UintIn, ArrayOf, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "client/client.h"
#include "codec/body.h"

namespace imbus::client {

namespace wire {

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

// The largest `limit` a list request may ask for (docs/protocol.md "Lists are paged").
inline constexpr uint64_t kMaxListLimit = 500;

// Every page of a paged list answer (docs/protocol.md "Lists are paged"), in order.
// `call(after)` sends one request (no `after` for the first page); the next page
// starts after key_of(last entry). Stops when `more` is false or absent (a server
// that does not page), or when a page brings no progress (a broken server: never a
// loop). The first failure is returned as is, with nothing in `value`.
template <typename T, typename Key, typename Call, typename Parse, typename KeyOf>
Result<std::vector<T>> AllPages(Call call, std::string_view array, Parse parse, KeyOf key_of) {
  Result<std::vector<T>> out;
  std::optional<Key> after;
  for (;;) {
    Response r = call(after);
    out.code = r.code;
    out.error = std::move(r.error);
    out.retry_ms = r.retry_ms;
    if (!r.ok()) {
      out.value.clear();
      return out;
    }
    const size_t had = out.value.size();
    bool more = false;
    try {
      for (const msgpack::object* o : codec::ArrayOf(r.body, array)) out.value.push_back(parse(*o));
      more = r.body.GetBool("more").value_or(false);
    } catch (const codec::BadField& e) {
      out.code = kCodeBadResponse;
      out.error = std::string("bad response body: ") + e.what();
      out.value.clear();
      return out;
    }
    if (!more || out.value.size() == had) return out;
    Key next = key_of(out.value.back());
    if (after && !(*after < next)) return out;
    after = std::move(next);
  }
}
}  // namespace wire

}  // namespace imbus::client

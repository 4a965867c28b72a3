// Public, header-only. Multi-row statements in a few fixed shapes: Slices splits a
// list of rows into statements of 64, 32, ... 1 rows, Repeat writes one statement's
// SQL. For stores that read or write many rows per round trip (the msg store).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imbus::actors {

// One multi-row statement: rows [begin, begin + count) of a list, written as `size`
// rows (size >= count; the extra ones repeat the last row).
struct Slice {
  size_t begin;
  size_t count;
  size_t size;
  size_t Row(size_t k) const { return begin + std::min(k, count - 1); }
};

// Splits n rows into statements of 64, 32, 16, 8, 4, 2 or 1 rows, so every kind of
// multi-row statement has at most seven shapes (each is a prepared statement cached per
// connection; arbitrary sizes would fill the server's prepared statement limit).
// `padded` is for statements where a repeated row changes nothing (SELECT ... IN, OR'd
// keys, INSERT IGNORE, an upsert of equal values): the last statement is rounded up, so
// n rows take ceil(n / 64) round trips. Otherwise sizes are exact (64s, then at most six
// statements for the rest, by its binary digits).
inline std::vector<Slice> Slices(size_t n, bool padded) {
  std::vector<Slice> out;
  size_t at = 0;
  while (at < n) {
    const size_t left = n - at;
    size_t size = 64;
    if (left < size) {
      size = 1;
      while (padded ? size < left : size * 2 <= left) size *= 2;
    }
    const size_t count = std::min(size, left);
    out.push_back({at, count, size});
    at += count;
  }
  return out;
}

// head, then `item` n times separated by `sep`, then tail: "VALUES (?,?),(?,?)".
inline std::string Repeat(std::string_view head, std::string_view item, std::string_view sep,
                          size_t n, std::string_view tail) {
  std::string s(head);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += sep;
    s += item;
  }
  s += tail;
  return s;
}

}  // namespace imbus::actors

// Public, header-only. Who blocks whom, read from the `blocks` table (the directory
// service writes it; directory, presence and msg read it), many users per round
// trip.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "actors/db/db.h"
#include "actors/db/statements.h"

namespace imbus::actors {

namespace blocks_detail {
// `select`: "SELECT <the other side> FROM blocks WHERE <uid's side> = ? AND
// <the other side> IN (" ; the uids follow.
inline std::set<uint64_t> Among(Db* db, const char* select, uint64_t uid,
                                const std::vector<uint64_t>& uids) {
  std::set<uint64_t> out;
  for (const Slice& sl : Slices(uids.size(), true)) {
    std::vector<DbParam> params;
    params.emplace_back(uid);
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(uids[sl.Row(k)]);
    const std::string sql = Repeat(select, "?", ",", sl.size, ")");
    for (const DbRow& row : db->Query(sql, params).rows) out.insert(row.Uint(0).value_or(0));
  }
  return out;
}
}  // namespace blocks_detail

// Those of `uids` who block `uid`.
inline std::set<uint64_t> BlockersOf(Db* db, uint64_t uid, const std::vector<uint64_t>& uids) {
  return blocks_detail::Among(db, "SELECT uid FROM blocks WHERE blocked_uid = ? AND uid IN (", uid,
                              uids);
}

// Those of `uids` whom `uid` blocks.
inline std::set<uint64_t> BlockedAmong(Db* db, uint64_t uid, const std::vector<uint64_t>& uids) {
  return blocks_detail::Among(
      db, "SELECT blocked_uid FROM blocks WHERE uid = ? AND blocked_uid IN (", uid, uids);
}

}  // namespace imbus::actors

#include "actors/msg/msg_store.h"

#include <mysqld_error.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <random>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/db/statements.h"

namespace imbus::actors::msg {
namespace {

constexpr int kMaxAttempts = 10;

bool Retryable(unsigned code) {
  return code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT || code == ER_DUP_ENTRY;
}

// Columns: conv, seq, sender, ts, text, cmid, gid.
constexpr const char* kMessageColumns = "m.conv, m.seq, m.sender, m.ts, m.text, m.cmid, m.gid";

StoredMessage MessageFromRow(const DbRow& row) {
  StoredMessage m;
  m.conv = row.Str(0).value_or("");
  m.seq = row.Uint(1).value_or(0);
  m.from = row.Uint(2).value_or(0);
  m.ts = row.Int(3).value_or(0);
  m.text = row.Str(4).value_or("");
  m.cmid = row.Str(5).value_or("");
  m.gid = row.Uint(6).value_or(0);
  return m;
}

}  // namespace

std::vector<StoreOutcome> MsgStore::StoreBatch(const std::vector<NewMessage>& batch,
                                               int64_t now_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  for (int attempt = 1;; ++attempt) {
    try {
      return StoreOnce(batch, now_ms);
    } catch (const DbUnavailable&) {
      throw;  // the transaction died with the connection
    } catch (const DbError& e) {
      db_->Rollback();
      if (!Retryable(e.code()) || attempt >= kMaxAttempts) throw;
      spdlog::debug("msg: batch of {} retried after {} (attempt {})", batch.size(), e.what(),
                    attempt);
      std::uniform_int_distribution<int> jitter(0, 5 * attempt);
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter(rng)));
    } catch (...) {
      db_->Rollback();
      throw;
    }
  }
}

std::vector<StoreOutcome> MsgStore::StoreOnce(const std::vector<NewMessage>& batch,
                                              int64_t now_ms) {
  std::vector<StoreOutcome> out(batch.size());
  // Every conversation row exists before the transaction (autocommit, idempotent), so
  // the FOR UPDATE below locks existing records only. Locking rows that do not exist
  // yet takes gap locks, and concurrent batches creating conversations side by side
  // then deadlock on each other's gaps.
  {
    std::set<std::string_view> convs;
    for (const NewMessage& m : batch) convs.insert(m.conv);
    std::vector<std::string_view> list(convs.begin(), convs.end());
    for (const Slice& sl : Slices(list.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
      db_->Query(Repeat("INSERT IGNORE INTO conversations (conv, last_seq, last_ts) VALUES ",
                        "(?,0,0)", ",", sl.size, ""),
                 params);
    }
  }
  // READ COMMITTED: no gap locks on searches; correctness rests on the row locks of
  // the counters and on the primary/unique keys of messages (a race ends in
  // ER_DUP_ENTRY and the batch is retried).
  db_->Exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
  db_->Begin();

  // 1. Dedup: (sender, cmid) stored earlier, by this or any worker.
  using Key = std::pair<uint64_t, std::string>;
  std::map<Key, StoredMessage> earlier;
  {
    for (const Slice& sl : Slices(batch.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) {
        params.emplace_back(batch[sl.Row(k)].sender);
        params.emplace_back(std::string_view(batch[sl.Row(k)].cmid));
      }
      const std::string sql =
          Repeat(std::string("SELECT ") + kMessageColumns + " FROM messages m WHERE ",
                 "(m.sender = ? AND m.cmid = ?)", " OR ", sl.size, "");
      for (const DbRow& row : db_->Query(sql, params).rows) {
        StoredMessage m = MessageFromRow(row);
        earlier[{m.from, m.cmid}] = std::move(m);
      }
    }
  }

  // 2. What is new, grouped by conversation (std::map: sorted, the lock order).
  std::map<Key, size_t> first_of;  // (sender, cmid) -> first new item
  std::map<std::string, std::vector<size_t>> by_conv;
  std::vector<size_t> repeat_of(batch.size(), SIZE_MAX);
  for (size_t i = 0; i < batch.size(); ++i) {
    Key key{batch[i].sender, batch[i].cmid};
    if (auto it = earlier.find(key); it != earlier.end()) {
      out[i].message = it->second;
      out[i].duplicate = true;
      continue;
    }
    auto [it, inserted] = first_of.emplace(std::move(key), i);
    if (!inserted) {
      repeat_of[i] = it->second;
      continue;
    }
    by_conv[batch[i].conv].push_back(i);
  }

  if (!by_conv.empty()) {
    // 3. Lock the counters in conv order; missing rows are new conversations.
    std::vector<const std::string*> convs;
    for (const auto& [conv, items] : by_conv) convs.push_back(&conv);
    struct Counter {
      uint64_t last_seq = 0;
      int64_t last_ts = 0;
      bool exists = false;
    };
    std::map<std::string, Counter> counters;
    for (const Slice& sl : Slices(convs.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) params.emplace_back(std::string_view(*convs[sl.Row(k)]));
      const std::string sql =
          Repeat("SELECT conv, last_seq, last_ts FROM conversations WHERE conv IN (", "?", ",",
                 sl.size, ") ORDER BY conv FOR UPDATE");
      for (const DbRow& row : db_->Query(sql, params).rows) {
        counters[row.Str(0).value_or("")] =
            Counter{row.Uint(1).value_or(0), row.Int(2).value_or(0), true};
      }
    }

    // 4. Seqs and ts: ts never goes down along a conversation's seqs.
    struct ConvUpdate {
      const std::string* conv;
      uint64_t last_seq;
      int64_t ts;
    };
    std::vector<ConvUpdate> updates;
    std::vector<std::pair<uint64_t, const std::string*>> new_direct;  // user_convs rows
    for (const auto& [conv, items] : by_conv) {
      const Counter c = counters[conv];
      const int64_t ts = std::max(now_ms, c.last_ts);
      uint64_t seq = c.last_seq;
      for (size_t i : items) {
        StoredMessage& m = out[i].message;
        m.conv = conv;
        m.seq = ++seq;
        m.from = batch[i].sender;
        m.ts = ts;
        m.text = batch[i].text;
        m.cmid = batch[i].cmid;
        m.gid = batch[i].gid;
      }
      updates.push_back({&conv, seq, ts});
      const NewMessage& first = batch[items.front()];
      if (c.last_seq == 0 && first.gid == 0) {  // the conversation's first messages
        new_direct.emplace_back(first.lo, &conv);
        if (first.hi != first.lo) new_direct.emplace_back(first.hi, &conv);
      }
    }

    for (const Slice& sl : Slices(updates.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) {
        const ConvUpdate& u = updates[sl.Row(k)];
        params.emplace_back(std::string_view(*u.conv));
        params.emplace_back(u.last_seq);
        params.emplace_back(u.ts);
      }
      db_->Query(Repeat("INSERT INTO conversations (conv, last_seq, last_ts) VALUES ", "(?,?,?)",
                        ",", sl.size,
                        " ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq),"
                        " last_ts = VALUES(last_ts)"),
                 params);
    }
    for (const Slice& sl : Slices(new_direct.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) {
        params.emplace_back(new_direct[sl.Row(k)].first);
        params.emplace_back(std::string_view(*new_direct[sl.Row(k)].second));
      }
      db_->Query(
          Repeat("INSERT IGNORE INTO user_convs (uid, conv) VALUES ", "(?,?)", ",", sl.size, ""),
          params);
    }

    // 5. The messages, multi-row.
    std::vector<size_t> fresh;
    for (const auto& [conv, items] : by_conv) fresh.insert(fresh.end(), items.begin(), items.end());
    for (const Slice& sl : Slices(fresh.size(), false)) {  // a repeated row would collide
      std::vector<DbParam> params;
      for (size_t k = sl.begin; k < sl.begin + sl.count; ++k) {
        const StoredMessage& m = out[fresh[k]].message;
        params.emplace_back(std::string_view(m.conv));
        params.emplace_back(m.seq);
        params.emplace_back(m.from);
        params.emplace_back(std::string_view(m.cmid));
        params.emplace_back(m.ts);
        params.emplace_back(m.gid);
        params.emplace_back(std::string_view(m.text));
      }
      db_->Query(Repeat("INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text) VALUES ",
                        "(?,?,?,?,?,?,?)", ",", sl.count, ""),
                 params);
    }

    // 6. Sending counts as reading: the sender's acked position moves up to their
    // newest message in each conversation (never down), in the same transaction, one
    // statement per 64 (sender, conv) pairs, so a batch costs one more round trip
    // however many messages it has. The counter lock of the conversation is held, so
    // no other batch writes these rows meanwhile.
    std::map<std::pair<uint64_t, std::string_view>, uint64_t> read_up_to;  // sorted: lock order
    for (size_t i : fresh) {
      const StoredMessage& m = out[i].message;
      uint64_t& seq = read_up_to[{m.from, std::string_view(m.conv)}];
      seq = std::max(seq, m.seq);
    }
    const std::vector<std::pair<std::pair<uint64_t, std::string_view>, uint64_t>> acks(
        read_up_to.begin(), read_up_to.end());
    for (const Slice& sl : Slices(acks.size(), true)) {  // a repeated row changes nothing
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) {
        const auto& [key, seq] = acks[sl.Row(k)];
        params.emplace_back(key.first);
        params.emplace_back(key.second);
        params.emplace_back(seq);
      }
      db_->Query(Repeat("INSERT INTO acks (uid, conv, acked_seq) VALUES ", "(?,?,?)", ",", sl.size,
                        " ON DUPLICATE KEY UPDATE acked_seq = GREATEST(acked_seq, "
                        "VALUES(acked_seq))"),
                 params);
    }
  }
  db_->Commit();

  for (size_t i = 0; i < batch.size(); ++i) {
    if (repeat_of[i] == SIZE_MAX) continue;
    out[i].message = out[repeat_of[i]].message;
    out[i].repeat = true;
  }
  return out;
}

std::set<uint64_t> MsgStore::LiveUsers(const std::set<uint64_t>& uids) {
  std::set<uint64_t> live;
  std::vector<uint64_t> list(uids.begin(), uids.end());
  for (const Slice& sl : Slices(list.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
    const std::string sql = Repeat("SELECT uid FROM users WHERE deleted_at IS NULL AND uid IN (",
                                   "?", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) live.insert(row.Uint(0).value_or(0));
  }
  return live;
}

Membership MsgStore::GroupMembership(uint64_t gid, uint64_t uid) {
  DbResult r = db_->Query(
      "SELECT g.gid, m.uid FROM chat_groups g"
      " LEFT JOIN group_members m ON m.gid = g.gid AND m.uid = ? WHERE g.gid = ?",
      {uid, gid});
  if (r.rows.empty()) return Membership::kNoGroup;
  return r.rows[0].IsNull(1) ? Membership::kNotMember : Membership::kMember;
}

std::vector<uint64_t> MsgStore::GroupMembers(uint64_t gid) {
  std::vector<uint64_t> out;
  for (const DbRow& row : db_->Query("SELECT uid FROM group_members WHERE gid = ?", {gid}).rows) {
    out.push_back(row.Uint(0).value_or(0));
  }
  return out;
}

uint64_t MsgStore::LastSeq(const std::string& conv) {
  DbResult r =
      db_->Query("SELECT last_seq FROM conversations WHERE conv = ?", {std::string_view(conv)});
  return r.rows.empty() ? 0 : r.rows[0].Uint(0).value_or(0);
}

void MsgStore::Ack(uint64_t uid, const std::string& conv, uint64_t seq) {
  db_->Query(
      "INSERT INTO acks (uid, conv, acked_seq) VALUES (?, ?, ?)"
      " ON DUPLICATE KEY UPDATE acked_seq = GREATEST(acked_seq, VALUES(acked_seq))",
      {uid, std::string_view(conv), seq});
}

// The caller's conversations: direct ones from user_convs; group ones from
// group_members, counted from a second before joining (a new member is not handed
// the group's whole past by SYNC; HISTORY has it).
std::vector<StoredMessage> MsgStore::Sync(uint64_t uid, uint64_t limit) {
  DbResult r =
      db_->Query(std::string("SELECT ") + kMessageColumns +
                     " FROM (SELECT conv, 0 AS since_ms FROM user_convs WHERE uid = ?"
                     "       UNION ALL"
                     "       SELECT CONVERT(CONCAT('g:', gid) USING ascii),"
                     "              CAST(UNIX_TIMESTAMP(joined_at) * 1000 AS SIGNED) - 1000"
                     "       FROM group_members WHERE uid = ?) c"
                     " LEFT JOIN acks a ON a.uid = ? AND a.conv = c.conv"
                     " JOIN messages m ON m.conv = c.conv AND m.seq > COALESCE(a.acked_seq, 0)"
                     "                AND m.ts >= c.since_ms"
                     " ORDER BY m.ts, m.conv, m.seq LIMIT ?",
                 {uid, uid, uid, limit});
  std::vector<StoredMessage> out;
  for (const DbRow& row : r.rows) out.push_back(MessageFromRow(row));
  return out;
}

std::vector<StoredMessage> MsgStore::History(const std::string& conv, uint64_t before,
                                             uint64_t limit) {
  if (before == 0) before = UINT64_MAX;
  DbResult r = db_->Query(std::string("SELECT ") + kMessageColumns +
                              " FROM messages m WHERE m.conv = ? AND m.seq < ?"
                              " ORDER BY m.seq DESC LIMIT ?",
                          {std::string_view(conv), before, limit});
  std::vector<StoredMessage> out;
  for (const DbRow& row : r.rows) out.push_back(MessageFromRow(row));
  return out;
}

std::vector<ConvState> MsgStore::Conversations(uint64_t uid, const std::string& after,
                                               uint64_t limit) {
  DbResult r = db_->Query(
      "SELECT c.conv, cv.last_seq, COALESCE(a.acked_seq, 0)"
      " FROM (SELECT conv FROM user_convs WHERE uid = ? AND conv > ?"
      "       UNION ALL"
      "       SELECT CONVERT(CONCAT('g:', gid) USING ascii) FROM group_members WHERE uid = ?) c"
      " JOIN conversations cv ON cv.conv = c.conv AND cv.last_seq > 0"
      " LEFT JOIN acks a ON a.uid = ? AND a.conv = c.conv"
      " WHERE c.conv > ?"
      " ORDER BY c.conv LIMIT ?",
      {uid, std::string_view(after), uid, uid, std::string_view(after), limit});
  std::vector<ConvState> out;
  for (const DbRow& row : r.rows) {
    out.push_back({row.Str(0).value_or(""), row.Uint(1).value_or(0), row.Uint(2).value_or(0)});
  }
  return out;
}

}  // namespace imbus::actors::msg

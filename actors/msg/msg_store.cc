#include "actors/msg/msg_store.h"

#include <mysqld_error.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <random>
#include <thread>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/db/blocks.h"
#include "actors/db/statements.h"
#include "actors/msg/msg_rules.h"

namespace imbus::actors::msg {
namespace {

constexpr int kMaxAttempts = 10;
// After this many attempts, a batch of several conversations is stored one
// conversation at a time (StoreByConversation).
constexpr int kSplitAfter = 3;

bool Retryable(unsigned code) {
  return code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT || code == ER_DUP_ENTRY;
}

// Columns: conv, seq, sender, ts, text, cmid, gid, recalled, edited_ts, file_id.
constexpr const char* kMessageColumns =
    "m.conv, m.seq, m.sender, m.ts, m.text, m.cmid, m.gid, m.recalled, m.edited_ts, m.file_id";

// Columns: file_id, uploader, name, size, mime, sha256, width, height, created_ms.
constexpr const char* kFileColumns =
    "f.file_id, f.uploader, f.name, f.size, f.mime, f.sha256, f.width, f.height, f.created_ms";

codec::FileObject FileFromRow(const DbRow& row) {
  codec::FileObject f;
  f.file = row.Str(0).value_or("");
  f.from = row.Uint(1).value_or(0);
  f.name = row.Str(2).value_or("");
  f.size = row.Uint(3).value_or(0);
  f.mime = row.Str(4).value_or("");
  f.sha256 = row.Str(5).value_or("");
  f.width = static_cast<uint32_t>(row.Uint(6).value_or(0));
  f.height = static_cast<uint32_t>(row.Uint(7).value_or(0));
  f.ts = row.Int(8).value_or(0);
  return f;
}

StoredMessage MessageFromRow(const DbRow& row) {
  StoredMessage m;
  m.conv = row.Str(0).value_or("");
  m.seq = row.Uint(1).value_or(0);
  m.from = row.Uint(2).value_or(0);
  m.ts = row.Int(3).value_or(0);
  m.text = row.Str(4).value_or("");
  m.cmid = row.Str(5).value_or("");
  m.gid = row.Uint(6).value_or(0);
  m.recalled = row.Int(7).value_or(0) != 0;
  m.edited_ts = row.Int(8).value_or(0);
  if (!row.IsNull(9)) {  // the id only: AttachFiles reads the file object
    m.file.emplace();
    m.file->file = row.Str(9).value_or("");
  }
  return m;
}

}  // namespace

std::vector<StoreOutcome> MsgStore::StoreBatch(const std::vector<NewMessage>& batch,
                                               int64_t now_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  bool check_earlier = false;
  bool serialize = false;
  for (int attempt = 1;; ++attempt) {
    try {
      return StoreOnce(batch, now_ms, check_earlier, serialize);
    } catch (const DbUnavailable&) {
      ForgetConvs(batch);  // the outcome of a lost COMMIT is unknown
      throw;               // the transaction died with the connection
    } catch (const DbError& e) {
      db_->Rollback();
      ForgetConvs(batch);
      if (!Retryable(e.code()) || attempt >= kMaxAttempts) throw;
      if (attempt >= kSplitAfter && SpansConversations(batch)) {
        retries_.Inc();
        spdlog::debug("msg: batch of {} stored one conversation at a time after {} (attempt {})",
                      batch.size(), e.what(), attempt);
        return StoreByConversation(batch, now_ms);
      }
      // A collision on (sender, cmid) is a duplicate this worker did not know of;
      // on (conv, seq), a tail another worker moved. Either way the next attempt
      // reads both from the table.
      if (e.code() == ER_DUP_ENTRY) {
        check_earlier = true;
        serialize = attempt >= 2;
      }
      retries_.Inc();
      spdlog::debug("msg: batch of {} retried after {} (attempt {})", batch.size(), e.what(),
                    attempt);
      std::uniform_int_distribution<int> jitter(0, 5 * attempt);
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter(rng)));
    } catch (...) {
      db_->Rollback();
      ForgetConvs(batch);
      throw;
    }
  }
}

bool MsgStore::SpansConversations(const std::vector<NewMessage>& batch) {
  return std::any_of(batch.begin(), batch.end(),
                     [&](const NewMessage& m) { return m.conv != batch.front().conv; });
}

// A batch that keeps colliding (another worker writes some of its conversations at
// the same time: the broker moved them, or an older broker gave them away when their
// owner was full) would fail every message for a collision in one conversation.
// Stored one conversation at a time, in order, each transaction retries only its own
// conversation's collisions.
std::vector<StoreOutcome> MsgStore::StoreByConversation(const std::vector<NewMessage>& batch,
                                                        int64_t now_ms) {
  std::map<std::string_view, std::vector<size_t>> by_conv;
  for (size_t i = 0; i < batch.size(); ++i) by_conv[batch[i].conv].push_back(i);
  std::vector<StoreOutcome> out(batch.size());
  std::vector<NewMessage> part;
  for (const auto& [conv, items] : by_conv) {
    part.clear();
    for (size_t i : items) part.push_back(batch[i]);
    std::vector<StoreOutcome> stored = StoreBatch(part, now_ms);
    for (size_t k = 0; k < items.size(); ++k) out[items[k]] = std::move(stored[k]);
  }
  return out;
}

void MsgStore::ForgetConvs(const std::vector<NewMessage>& batch) {
  for (const NewMessage& m : batch) tails_.Forget(m.conv);
}

std::vector<StoreOutcome> MsgStore::StoreOnce(const std::vector<NewMessage>& batch, int64_t now_ms,
                                              bool check_earlier, bool serialize) {
  // READ COMMITTED: no gap locks on the unique checks of the inserts; the keys of
  // messages decide every race (ER_DUP_ENTRY, and the batch is stored again).
  if (serialize) {
    db_->Begin(false, Db::Isolation::kReadCommitted);
    LockConvs(batch);  // then every read below sees what the previous holder committed
  }
  if (!check_earlier) {
    check_earlier = std::any_of(batch.begin(), batch.end(), [&](const NewMessage& m) {
      return tails_.MaybeStored(m.sender, m.cmid);
    });
  }
  BatchPlan plan = PlanBatch(batch, check_earlier ? StoredEarlier(batch) : EarlierMessages{});
  if (!plan.by_conv.empty()) {
    if (!serialize) db_->Begin(false, Db::Isolation::kReadCommitted);
    // In the transaction: it may write acks rows. After a collision the table
    // decides: a conversation taken for new may have collided at seq 1.
    LoadTails(batch, !check_earlier, &plan);
    const std::vector<TailUpdate> tails = AssignSeqs(batch, now_ms, &plan);
    InsertMembers(tails);
    InsertMessages(plan);
    InsertFileGrants(plan);
    RaiseSenderAcks(plan);
    InsertPushOutbox(batch, plan, now_ms);
    db_->Commit();
    for (const TailUpdate& t : tails) tails_.Set(*t.conv, t.tail);
    for (size_t i : plan.fresh) tails_.NoteStored(batch[i].sender, batch[i].cmid);
  } else if (serialize) {
    db_->Commit();  // nothing new to store: only the locks to let go
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (plan.repeat_of[i] == SIZE_MAX) continue;
    plan.out[i].message = plan.out[plan.repeat_of[i]].message;
    plan.out[i].repeat = true;
  }
  return std::move(plan.out);
}

// The conversations table is no longer a counter (a conversation's tail is its
// newest message); its rows serve as the lock of a conversation on this path only,
// taken in conv order (no deadlock between two batches).
void MsgStore::LockConvs(const std::vector<NewMessage>& batch) {
  std::set<std::string_view> convs;
  for (const NewMessage& m : batch) convs.insert(m.conv);
  const std::vector<std::string_view> list(convs.begin(), convs.end());
  for (const Slice& sl : Slices(list.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
    db_->Query(Repeat("INSERT INTO conversations (conv, last_seq, last_ts) VALUES ", "(?,0,0)", ",",
                      sl.size, " ON DUPLICATE KEY UPDATE last_seq = last_seq"),
               params);
  }
}

MsgStore::EarlierMessages MsgStore::StoredEarlier(const std::vector<NewMessage>& batch) {
  EarlierMessages earlier;
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
  return earlier;
}

MsgStore::BatchPlan MsgStore::PlanBatch(const std::vector<NewMessage>& batch,
                                        const EarlierMessages& earlier) {
  BatchPlan plan;
  plan.out.resize(batch.size());
  plan.repeat_of.assign(batch.size(), SIZE_MAX);
  std::map<MessageKey, size_t> first_of;  // (sender, cmid) -> first new item
  for (size_t i = 0; i < batch.size(); ++i) {
    MessageKey key{batch[i].sender, batch[i].cmid};
    if (auto it = earlier.find(key); it != earlier.end()) {
      plan.out[i].message = it->second;
      plan.out[i].duplicate = true;
      continue;
    }
    auto [it, inserted] = first_of.emplace(std::move(key), i);
    if (!inserted) {
      plan.repeat_of[i] = it->second;
      continue;
    }
    plan.by_conv[batch[i].conv].push_back(i);
  }
  for (const auto& [conv, items] : plan.by_conv) {
    plan.fresh.insert(plan.fresh.end(), items.begin(), items.end());
  }
  return plan;
}

// A conversation's tail is its newest message row: messages are never deleted, so
// MAX(seq) is the counter. Read for conversations this worker does not know or was
// not the owner of (the broker sent one of its messages elsewhere since, or
// ownership moved), unless ClaimNewConvs finds them new.
void MsgStore::LoadTails(const std::vector<NewMessage>& batch, bool claim, BatchPlan* plan) {
  std::vector<const std::string*> missing;
  for (const auto& [conv, items] : plan->by_conv) {
    const bool owned =
        std::all_of(items.begin(), items.end(), [&](size_t i) { return batch[i].owned; });
    std::optional<ConvTails::Tail> t;
    if (owned) t = tails_.Find(conv);
    if (t) {
      plan->tails[conv] = *t;
    } else {
      missing.push_back(&conv);
      plan->tails[conv] = ConvTails::Tail{};
    }
  }
  if (claim) ClaimNewConvs(batch, plan, &missing);
  ReadTails(missing, plan);
}

// A direct conversation's first message is stored in the same transaction as the
// acks rows of both members (ClaimNewConvs, or AssignSeqs and InsertMembers), so a
// conversation neither of whose rows exists has no message. INSERT IGNORE ...
// RETURNING writes the rows of the unknown direct conversations and names the ones
// it inserted: where it inserted all of a conversation's rows, the conversation is
// new and needs no MAX(seq) read (a new pair of users, the common case when a worker
// does not know a conversation). A row that existed, or one another transaction
// holds, sends the conversation to ReadTails.
// Each row carries the member's read position were the conversation new: the seq
// their last message of the batch gets when numbered from 1 (0 without one). For a
// claimed conversation that is exact, and RaiseSenderAcks leaves it alone; for one
// that was not new, it is at most the real seq, and RaiseSenderAcks raises it.
// Even a wrong guess cannot number a conversation from 1 twice: (conv, 1) is a
// primary key, the insert collides and the batch is stored again from the table.
void MsgStore::ClaimNewConvs(const std::vector<NewMessage>& batch, BatchPlan* plan,
                             std::vector<const std::string*>* missing) {
  struct Row {
    uint64_t uid;
    const std::string* conv;
    uint64_t acked;
  };
  std::vector<Row> rows;                        // (conv, uid) order: lock order
  std::map<std::string_view, size_t> expected;  // rows each one still needs inserted
  for (const std::string* conv : *missing) {
    const std::vector<size_t>& items = plan->by_conv[*conv];
    const NewMessage& first = batch[items.front()];
    if (first.gid != 0) continue;
    uint64_t lo_acked = 0, hi_acked = 0;
    for (size_t k = 0; k < items.size(); ++k) {
      (batch[items[k]].sender == first.lo ? lo_acked : hi_acked) = k + 1;
    }
    rows.push_back({first.lo, conv, lo_acked});
    if (first.hi != first.lo) rows.push_back({first.hi, conv, hi_acked});
    expected[*conv] = first.hi != first.lo ? 2 : 1;
  }
  if (rows.empty()) return;
  // A row is returned at most once: a repeated one is ignored.
  for (const Slice& sl : Slices(rows.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) {
      const Row& row = rows[sl.Row(k)];
      params.emplace_back(row.uid);
      params.emplace_back(std::string_view(*row.conv));
      params.emplace_back(row.acked);
    }
    const std::string sql = Repeat("INSERT IGNORE INTO acks (uid, conv, acked_seq) VALUES ",
                                   "(?,?,?)", ",", sl.size, " RETURNING conv");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      auto it = expected.find(std::string_view(row.Str(0).value_or("")));
      if (it != expected.end() && it->second > 0) --it->second;
    }
  }
  std::erase_if(*missing, [&](const std::string* conv) {
    auto left = expected.find(*conv);
    if (left == expected.end() || left->second != 0) return false;
    plan->claimed.insert(*conv);
    return true;
  });
}

void MsgStore::ReadTails(const std::vector<const std::string*>& missing, BatchPlan* plan) {
  // Two steps, as cheap as MariaDB makes them: MAX(seq) of each by a loose index
  // scan (one range per conversation; a new conversation finds nothing and costs
  // nothing more), then the ts of the rows found, by their primary keys.
  std::vector<std::pair<const std::string*, uint64_t>> found;
  for (const Slice& sl : Slices(missing.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(std::string_view(*missing[sl.Row(k)]));
    const std::string sql = Repeat("SELECT conv, MAX(seq) FROM messages WHERE conv IN (", "?", ",",
                                   sl.size, ") GROUP BY conv");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      auto it = plan->tails.find(row.Str(0).value_or(""));
      if (it == plan->tails.end()) continue;
      it->second.seq = row.Uint(1).value_or(0);
      found.emplace_back(&it->first, it->second.seq);
    }
  }
  for (const Slice& sl : Slices(found.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) {
      params.emplace_back(std::string_view(*found[sl.Row(k)].first));
      params.emplace_back(found[sl.Row(k)].second);
    }
    const std::string sql =
        Repeat("SELECT conv, ts FROM messages WHERE (conv, seq) IN (", "(?,?)", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      auto it = plan->tails.find(row.Str(0).value_or(""));
      if (it != plan->tails.end()) it->second.ts = row.Int(1).value_or(0);
    }
  }
}

// Seqs follow the tail; ts never goes down along a conversation's seqs.
std::vector<MsgStore::TailUpdate> MsgStore::AssignSeqs(const std::vector<NewMessage>& batch,
                                                       int64_t now_ms, BatchPlan* plan) {
  std::vector<TailUpdate> tails;
  for (const auto& [conv, items] : plan->by_conv) {
    const ConvTails::Tail before = plan->tails[conv];
    const int64_t ts = std::max(now_ms, before.ts);
    uint64_t seq = before.seq;
    for (size_t i : items) {
      StoredMessage& m = plan->out[i].message;
      m.conv = conv;
      m.seq = ++seq;
      m.from = batch[i].sender;
      m.ts = ts;
      m.text = batch[i].text;
      m.cmid = batch[i].cmid;
      m.gid = batch[i].gid;
      m.file = batch[i].file;
    }
    TailUpdate t{&conv, {seq, ts}, {}};
    const NewMessage& first = batch[items.front()];
    // A direct conversation's first messages; ClaimNewConvs wrote the members' rows
    // of those it claimed.
    if (before.seq == 0 && first.gid == 0 && plan->claimed.count(conv) == 0) {
      t.new_members.push_back(first.lo);
      if (first.hi != first.lo) t.new_members.push_back(first.hi);
    }
    tails.push_back(std::move(t));
  }
  return tails;
}

// The members' acks rows of new direct conversations ClaimNewConvs did not claim, at
// 0: RaiseSenderAcks raises the senders'.
void MsgStore::InsertMembers(const std::vector<TailUpdate>& tails) {
  std::vector<std::pair<uint64_t, const std::string*>> rows;
  for (const TailUpdate& t : tails) {
    for (uint64_t uid : t.new_members) rows.emplace_back(uid, t.conv);
  }
  for (const Slice& sl : Slices(rows.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) {
      params.emplace_back(rows[sl.Row(k)].first);
      params.emplace_back(std::string_view(*rows[sl.Row(k)].second));
    }
    db_->Query(Repeat("INSERT IGNORE INTO acks (uid, conv, acked_seq) VALUES ", "(?,?,0)", ",",
                      sl.size, ""),
               params);
  }
}

// Multi-row, in (conv, seq) order, so that two workers writing the same
// conversations meet in the same order (a collision, not a deadlock). A slice
// without a file message uses the statement without file_id (the column's default
// is NULL): messages without files cost what they did before issue 19.
void MsgStore::InsertMessages(const BatchPlan& plan) {
  for (const Slice& sl : Slices(plan.fresh.size(), false)) {  // a repeated row would collide
    bool files = false;
    for (size_t k = sl.begin; k < sl.begin + sl.count; ++k) {
      files = files || plan.out[plan.fresh[k]].message.file.has_value();
    }
    std::vector<DbParam> params;
    for (size_t k = sl.begin; k < sl.begin + sl.count; ++k) {
      const StoredMessage& m = plan.out[plan.fresh[k]].message;
      params.emplace_back(std::string_view(m.conv));
      params.emplace_back(m.seq);
      params.emplace_back(m.from);
      params.emplace_back(std::string_view(m.cmid));
      params.emplace_back(m.ts);
      params.emplace_back(m.gid);
      params.emplace_back(std::string_view(m.text));
      if (!files) continue;
      if (m.file) {
        params.emplace_back(std::string_view(m.file->file));
      } else {
        params.emplace_back(nullptr);
      }
    }
    if (files) {
      db_->Query(
          Repeat("INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text, file_id) VALUES ",
                 "(?,?,?,?,?,?,?,?)", ",", sl.count, ""),
          params);
    } else {
      db_->Query(Repeat("INSERT INTO messages (conv, seq, sender, cmid, ts, gid, text) VALUES ",
                        "(?,?,?,?,?,?,?)", ",", sl.count, ""),
                 params);
    }
  }
}

// Sending a file into a conversation lets its members see it: one file_grants row
// per (file, conv), sorted (lock order), only when the batch has file messages.
void MsgStore::InsertFileGrants(const BatchPlan& plan) {
  std::vector<std::pair<std::string_view, std::string_view>> rows;
  for (size_t i : plan.fresh) {
    const StoredMessage& m = plan.out[i].message;
    if (m.file) rows.emplace_back(m.file->file, m.conv);
  }
  if (rows.empty()) return;
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  for (const Slice& sl : Slices(rows.size(), true)) {  // a repeated row changes nothing
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) {
      params.emplace_back(rows[sl.Row(k)].first);
      params.emplace_back(rows[sl.Row(k)].second);
    }
    db_->Query(
        Repeat("INSERT IGNORE INTO file_grants (file_id, conv) VALUES ", "(?,?)", ",", sl.size, ""),
        params);
  }
}

// Who may see a file: its uploader, a participant of a direct conversation it was
// sent to (d:<lo>:<hi>: the uid is lo or hi, read from the id itself), or a member
// of a group it was sent to (g:<gid>, membership now).
std::map<std::string, codec::FileObject> MsgStore::VisibleFiles(uint64_t uid,
                                                                const std::set<std::string>& ids) {
  std::map<std::string, codec::FileObject> out;
  const std::vector<std::string_view> list(ids.begin(), ids.end());
  const std::string me = std::to_string(uid);
  const std::string as_lo = "d:" + me + ":%";
  const std::string as_hi = "d:%:" + me;
  for (const Slice& sl : Slices(list.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
    params.emplace_back(uid);
    params.emplace_back(std::string_view(as_lo));
    params.emplace_back(std::string_view(as_hi));
    params.emplace_back(uid);
    const std::string sql =
        Repeat(std::string("SELECT ") + kFileColumns + " FROM files f WHERE f.file_id IN (", "?",
               ",", sl.size,
               ") AND (f.uploader = ?"
               " OR EXISTS(SELECT 1 FROM file_grants g WHERE g.file_id = f.file_id"
               "           AND (g.conv LIKE ? OR g.conv LIKE ?))"
               " OR EXISTS(SELECT 1 FROM file_grants g JOIN group_members gm"
               "           ON gm.gid = CAST(SUBSTRING(g.conv, 3) AS UNSIGNED) AND gm.uid = ?"
               "           WHERE g.file_id = f.file_id AND g.conv LIKE 'g:%'))");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      codec::FileObject f = FileFromRow(row);
      std::string id = f.file;
      out.emplace(std::move(id), std::move(f));
    }
  }
  return out;
}

void MsgStore::AttachFiles(std::vector<StoredMessage>* messages) {
  std::set<std::string_view> ids;
  for (const StoredMessage& m : *messages) {
    if (m.file && m.file->name.empty()) ids.insert(m.file->file);
  }
  if (ids.empty()) return;
  std::map<std::string, codec::FileObject, std::less<>> found;
  const std::vector<std::string_view> list(ids.begin(), ids.end());
  for (const Slice& sl : Slices(list.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
    const std::string sql =
        Repeat(std::string("SELECT ") + kFileColumns + " FROM files f WHERE f.file_id IN (", "?",
               ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      codec::FileObject f = FileFromRow(row);
      std::string id = f.file;
      found.emplace(std::move(id), std::move(f));
    }
  }
  for (StoredMessage& m : *messages) {
    if (!m.file || !m.file->name.empty()) continue;
    auto it = found.find(m.file->file);
    if (it == found.end()) {
      m.file.reset();
    } else {
      m.file = it->second;
    }
  }
}

// Sending counts as reading: the sender's acked position moves up to their newest
// message in each conversation (never down), in the same transaction, one
// statement per 64 (sender, conv) pairs. The conversations ClaimNewConvs claimed
// have their rows at the right position already.
void MsgStore::RaiseSenderAcks(const BatchPlan& plan) {
  std::map<std::pair<uint64_t, std::string_view>, uint64_t> read_up_to;  // sorted: lock order
  for (size_t i : plan.fresh) {
    const StoredMessage& m = plan.out[i].message;
    if (plan.claimed.count(m.conv) != 0) continue;
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

// The offline recipients' notifications (NewMessage::push_to), multi-row, sorted by
// key so that two workers meet in the same order.
void MsgStore::InsertPushOutbox(const std::vector<NewMessage>& batch, const BatchPlan& plan,
                                int64_t now_ms) {
  std::vector<std::tuple<uint64_t, std::string_view, uint64_t, uint64_t>> rows;
  for (size_t i : plan.fresh) {
    const StoredMessage& m = plan.out[i].message;
    for (uint64_t uid : batch[i].push_to) rows.emplace_back(uid, m.conv, m.seq, m.from);
  }
  if (rows.empty()) return;
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  for (const Slice& sl : Slices(rows.size(), false)) {
    std::vector<DbParam> params;
    for (size_t k = sl.begin; k < sl.begin + sl.count; ++k) {
      const auto& [uid, conv, seq, sender] = rows[k];
      params.emplace_back(uid);
      params.emplace_back(conv);
      params.emplace_back(seq);
      params.emplace_back(sender);
      params.emplace_back(now_ms);
    }
    db_->Query(Repeat("INSERT INTO push_outbox (uid, conv, seq, sender, due_ms) VALUES ",
                      "(?,?,?,?,?)", ",", sl.count, ""),
               params);
  }
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

std::set<uint64_t> MsgStore::MembersWithDevices(const std::set<uint64_t>& gids) {
  std::set<uint64_t> out;
  std::vector<uint64_t> list(gids.begin(), gids.end());
  for (const Slice& sl : Slices(list.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(list[sl.Row(k)]);
    const std::string sql = Repeat(
        "SELECT DISTINCT m.uid FROM group_members m"
        " WHERE EXISTS(SELECT 1 FROM push_devices d WHERE d.uid = m.uid) AND m.gid IN (",
        "?", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) out.insert(row.Uint(0).value_or(0));
  }
  return out;
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
  DbResult r = db_->Query("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conv = ?",
                          {std::string_view(conv)});
  return r.rows.empty() ? 0 : r.rows[0].Uint(0).value_or(0);
}

bool MsgStore::Ack(uint64_t uid, const std::string& conv, uint64_t seq) {
  // affected_rows: 1 inserted, 2 raised, 0 unchanged.
  return db_->Query(
                "INSERT INTO acks (uid, conv, acked_seq) VALUES (?, ?, ?)"
                " ON DUPLICATE KEY UPDATE acked_seq = GREATEST(acked_seq, VALUES(acked_seq))",
                {uid, std::string_view(conv), seq})
             .affected_rows > 0;
}

// The caller's conversations: direct ones are their acks rows with a 'd:' id (every
// member has one from the first message on; ':' < ';' bounds the range); group
// ones come from group_members, counted from a second before joining (a new member
// is not handed the group's whole past by SYNC; HISTORY has it).
std::vector<StoredMessage> MsgStore::Sync(uint64_t uid, uint64_t limit) {
  DbResult r = db_->Query(
      std::string("SELECT ") + kMessageColumns +
          " FROM (SELECT conv, acked_seq, 0 AS since_ms FROM acks"
          "       WHERE uid = ? AND conv > 'd:' AND conv < 'd;'"
          "       UNION ALL"
          "       SELECT g.conv, COALESCE(a.acked_seq, 0), g.since_ms"
          "       FROM (SELECT CONVERT(CONCAT('g:', gid) USING ascii) AS conv,"
          "                    CAST(UNIX_TIMESTAMP(joined_at) * 1000 AS SIGNED) - 1000 AS since_ms"
          "             FROM group_members WHERE uid = ?) g"
          "       LEFT JOIN acks a ON a.uid = ? AND a.conv = g.conv) c"
          " JOIN messages m ON m.conv = c.conv AND m.seq > c.acked_seq AND m.ts >= c.since_ms"
          " LEFT JOIN hidden_messages h ON h.uid = ? AND h.conv = m.conv AND h.seq = m.seq"
          " WHERE h.uid IS NULL"
          " ORDER BY m.ts, m.conv, m.seq LIMIT ?",
      {uid, uid, uid, uid, limit});
  std::vector<StoredMessage> out;
  for (const DbRow& row : r.rows) out.push_back(MessageFromRow(row));
  AttachFiles(&out);
  return out;
}

std::vector<StoredMessage> MsgStore::History(uint64_t uid, const std::string& conv, uint64_t before,
                                             uint64_t limit) {
  if (before == 0) before = UINT64_MAX;
  DbResult r = db_->Query(std::string("SELECT ") + kMessageColumns +
                              " FROM messages m LEFT JOIN hidden_messages h ON h.uid = ?"
                              " AND h.conv = m.conv AND h.seq = m.seq"
                              " WHERE m.conv = ? AND m.seq < ? AND h.uid IS NULL"
                              " ORDER BY m.seq DESC LIMIT ?",
                          {uid, std::string_view(conv), before, limit});
  std::vector<StoredMessage> out;
  for (const DbRow& row : r.rows) out.push_back(MessageFromRow(row));
  AttachFiles(&out);
  return out;
}

std::vector<ConvState> MsgStore::Conversations(uint64_t uid, const std::string& after,
                                               uint64_t limit) {
  // last_seq: the newest message row (a backward step of the primary key per
  // conversation); conversations without a message are left out.
  DbResult r = db_->Query(
      "SELECT x.conv, (SELECT MAX(m.seq) FROM messages m WHERE m.conv = x.conv) AS last_seq,"
      "       x.acked_seq"
      " FROM (SELECT conv, acked_seq FROM acks"
      "       WHERE uid = ? AND conv > ? AND conv > 'd:' AND conv < 'd;'"
      "       UNION ALL"
      "       SELECT g.conv, COALESCE(a.acked_seq, 0)"
      "       FROM (SELECT CONVERT(CONCAT('g:', gid) USING ascii) AS conv"
      "             FROM group_members WHERE uid = ?) g"
      "       LEFT JOIN acks a ON a.uid = ? AND a.conv = g.conv) x"
      " WHERE x.conv > ?"
      " HAVING last_seq > 0"
      " ORDER BY x.conv LIMIT ?",
      {uid, std::string_view(after), uid, uid, std::string_view(after), limit});
  std::vector<ConvState> out;
  for (const DbRow& row : r.rows) {
    out.push_back({row.Str(0).value_or(""), row.Uint(1).value_or(0), row.Uint(2).value_or(0), {}});
  }
  // How far the other side of each direct conversation has read: by primary key,
  // one statement for the page; a peer with read receipts off is left out.
  std::vector<std::pair<uint64_t, ConvState*>> peers;
  for (ConvState& c : out) {
    std::optional<ConvId> id = ParseConv(c.conv);
    if (!id || id->group || id->lo == id->hi) continue;
    peers.emplace_back(id->Peer(uid), &c);
  }
  for (const Slice& sl : Slices(peers.size(), true)) {
    std::vector<DbParam> params;
    std::map<std::pair<uint64_t, std::string_view>, ConvState*> by_key;
    for (size_t k = 0; k < sl.size; ++k) {
      const auto& [peer, c] = peers[sl.Row(k)];
      params.emplace_back(peer);
      params.emplace_back(std::string_view(c->conv));
      by_key[{peer, std::string_view(c->conv)}] = c;
      c->peer_acked_seq = 0;
    }
    const std::string sql =
        Repeat("SELECT a.uid, a.conv, a.acked_seq FROM acks a WHERE (a.uid, a.conv) IN (", "(?,?)",
               ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      const std::string conv = row.Str(1).value_or("");
      auto it = by_key.find({row.Uint(0).value_or(0), std::string_view(conv)});
      if (it != by_key.end()) it->second->peer_acked_seq = row.Uint(2).value_or(0);
    }
    std::set<uint64_t> silent;
    std::vector<DbParam> uids;
    for (size_t k = 0; k < sl.size; ++k) uids.emplace_back(peers[sl.Row(k)].first);
    const std::string prefs = Repeat(
        "SELECT uid FROM user_prefs WHERE read_receipts = 0 AND uid IN (", "?", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(prefs, uids).rows) silent.insert(row.Uint(0).value_or(0));
    for (size_t k = 0; k < sl.size; ++k) {
      if (silent.count(peers[sl.Row(k)].first) != 0)
        peers[sl.Row(k)].second->peer_acked_seq.reset();
    }
  }
  return out;
}

bool MsgStore::ReadReceipts(uint64_t uid) {
  DbResult r = db_->Query("SELECT read_receipts FROM user_prefs WHERE uid = ?", {uid});
  return r.rows.empty() || r.rows[0].Int(0).value_or(1) != 0;
}

void MsgStore::SetReadReceipts(uint64_t uid, bool on) {
  db_->Query(
      "INSERT INTO user_prefs (uid, read_receipts) VALUES (?, ?)"
      " ON DUPLICATE KEY UPDATE read_receipts = VALUES(read_receipts)",
      {uid, int64_t{on ? 1 : 0}});
}

std::set<uint64_t> MsgStore::BlockedBy(uint64_t uid, const std::vector<uint64_t>& uids) {
  return BlockersOf(db_, uid, uids);
}

MsgStore::Recipients MsgStore::CheckRecipients(const std::set<std::pair<uint64_t, uint64_t>>& pairs,
                                               bool devices) {
  Recipients out;
  std::vector<uint64_t> recipients;
  for (const auto& [to, from] : pairs) {
    if (recipients.empty() || recipients.back() != to) recipients.push_back(to);
  }
  // The recipients' rows, by primary key: alive, and their push_device and
  // blocks_someone flags. Only recipients who block someone cost a look at blocks
  // (a row constructor IN over the pairs made the range optimizer build trees
  // worth ~13 µs per message; most users block no one).
  std::set<uint64_t> blockers;
  for (const Slice& sl : Slices(recipients.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(recipients[sl.Row(k)]);
    const std::string sql = Repeat(
        "SELECT uid, push_device, blocks_someone FROM users"
        " WHERE deleted_at IS NULL AND uid IN (",
        "?", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      const uint64_t uid = row.Uint(0).value_or(0);
      out.live.insert(uid);
      if (devices && row.Uint(1).value_or(0) != 0) out.with_devices.insert(uid);
      if (row.Uint(2).value_or(0) != 0) blockers.insert(uid);
    }
  }
  for (uint64_t blocker : blockers) {
    std::vector<uint64_t> senders;
    for (auto it = pairs.lower_bound({blocker, 0}); it != pairs.end() && it->first == blocker;
         ++it) {
      senders.push_back(it->second);
    }
    for (uint64_t blocked : BlockedAmong(db_, blocker, senders))
      out.blocks.insert({blocker, blocked});
  }
  return out;
}

MsgStore::GroupInfo MsgStore::Group(uint64_t gid) {
  GroupInfo g;
  DbResult r = db_->Query(
      "SELECT g.muted, m.uid, m.role FROM chat_groups g"
      " LEFT JOIN group_members m ON m.gid = g.gid WHERE g.gid = ?",
      {gid});
  for (const DbRow& row : r.rows) {
    g.exists = true;
    g.muted = row.Int(0).value_or(0) != 0;
    if (row.IsNull(1)) continue;
    const uint64_t uid = row.Uint(1).value_or(0);
    g.members.push_back(uid);
    const std::string role = row.Str(2).value_or("");
    if (role == "owner" || role == "admin") g.admins.insert(uid);
  }
  return g;
}

ChangeOutcome MsgStore::Change(const std::string& conv, uint64_t seq, uint64_t sender, bool recall,
                               const std::string& text, int64_t now_ms, int64_t not_before_ms) {
  DbResult r =
      recall ? db_->Query(
                   "UPDATE messages SET text = '', recalled = 1, edited_ts = 0, file_id = NULL"
                   " WHERE conv = ? AND seq = ? AND sender = ? AND recalled = 0 AND ts >= ?",
                   {std::string_view(conv), seq, sender, not_before_ms})
             : db_->Query(
                   "UPDATE messages SET text = ?, edited_ts = ?"
                   " WHERE conv = ? AND seq = ? AND sender = ? AND recalled = 0 AND ts >= ?",
                   {std::string_view(text), now_ms, std::string_view(conv), seq, sender,
                    not_before_ms});
  if (r.affected_rows > 0) return ChangeOutcome::kDone;
  std::optional<StoredMessage> m = Find(conv, seq);
  if (!m) return ChangeOutcome::kNoMessage;
  if (m->from != sender) return ChangeOutcome::kNotSender;
  if (m->recalled) return ChangeOutcome::kRecalled;
  if (m->ts < not_before_ms) return ChangeOutcome::kTooLate;
  return ChangeOutcome::kDone;  // an edit to the same text in the same millisecond
}

std::optional<StoredMessage> MsgStore::Find(const std::string& conv, uint64_t seq) {
  DbResult r = db_->Query(
      std::string("SELECT ") + kMessageColumns + " FROM messages m WHERE m.conv = ? AND m.seq = ?",
      {std::string_view(conv), seq});
  if (r.rows.empty()) return std::nullopt;
  std::vector<StoredMessage> one{MessageFromRow(r.rows[0])};
  AttachFiles(&one);
  return std::move(one[0]);
}

void MsgStore::Hide(uint64_t uid, const std::string& conv, uint64_t seq) {
  db_->Query("INSERT IGNORE INTO hidden_messages (uid, conv, seq) VALUES (?, ?, ?)",
             {uid, std::string_view(conv), seq});
}

}  // namespace imbus::actors::msg

#include "actors/push/push_store.h"

#include <map>
#include <set>
#include <utility>

#include "actors/db/statements.h"

namespace imbus::actors::push {
namespace {

std::string Clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n); }

}  // namespace

void PushStore::RegisterDevice(uint64_t uid, const Device& d, int64_t now_ms) {
  db_->Query(
      "INSERT INTO push_devices (platform, token, uid, created_ms) VALUES (?, ?, ?, ?)"
      " ON DUPLICATE KEY UPDATE uid = VALUES(uid), created_ms = VALUES(created_ms)",
      {std::string_view(d.platform), std::string_view(d.token), uid, now_ms});
  db_->Query("UPDATE users SET push_device = 1 WHERE uid = ? AND push_device = 0", {uid});
  // The newest kMaxDevicesPerUser stay. A race of two registrations may leave one
  // more for a while; the next one trims it.
  DbResult r = db_->Query(
      "SELECT created_ms FROM push_devices WHERE uid = ? ORDER BY created_ms DESC LIMIT 1 OFFSET ?",
      {uid, static_cast<uint64_t>(kMaxDevicesPerUser - 1)});
  if (r.rows.empty()) return;
  const int64_t oldest_kept = r.rows[0].Int(0).value_or(0);
  db_->Query("DELETE FROM push_devices WHERE uid = ? AND created_ms < ?", {uid, oldest_kept});
}

bool PushStore::UnregisterDevice(uint64_t uid, const Device& d) {
  const bool removed =
      db_->Query("DELETE FROM push_devices WHERE platform = ? AND token = ? AND uid = ?",
                 {std::string_view(d.platform), std::string_view(d.token), uid})
          .affected_rows > 0;
  if (removed) {
    db_->Query(
        "UPDATE users SET push_device = EXISTS(SELECT 1 FROM push_devices WHERE uid = ?)"
        " WHERE uid = ?",
        {uid, uid});
  }
  return removed;
}

bool PushStore::Preview(uint64_t uid) {
  DbResult r = db_->Query("SELECT preview FROM push_settings WHERE uid = ?", {uid});
  return r.rows.empty() || r.rows[0].Uint(0).value_or(1) != 0;
}

void PushStore::SetPreview(uint64_t uid, bool preview) {
  db_->Query(
      "INSERT INTO push_settings (uid, preview) VALUES (?, ?)"
      " ON DUPLICATE KEY UPDATE preview = VALUES(preview)",
      {uid, static_cast<uint64_t>(preview ? 1 : 0)});
}

std::vector<Notification> PushStore::Claim(const std::string& worker, int64_t now_ms,
                                           int64_t lease_until_ms, size_t limit, uint32_t max_tries,
                                           uint64_t* dead) {
  std::vector<Notification> out;
  std::vector<OutboxKey> spent;
  db_->Begin(false, Db::Isolation::kReadCommitted);
  try {
    DbResult due = db_->Query(
        "SELECT uid, conv, seq, tries, sender FROM push_outbox WHERE state = 0 AND due_ms <= ?"
        " ORDER BY due_ms LIMIT ? FOR UPDATE SKIP LOCKED",
        {now_ms, static_cast<uint64_t>(limit)});
    for (const DbRow& row : due.rows) {
      OutboxKey k{row.Uint(0).value_or(0), row.Str(1).value_or(""), row.Uint(2).value_or(0)};
      const uint32_t tries = static_cast<uint32_t>(row.Uint(3).value_or(0));
      if (tries >= max_tries) {
        spent.push_back(std::move(k));
        continue;
      }
      Notification n;
      n.key = std::move(k);
      n.tries = tries + 1;
      n.sender = row.Uint(4).value_or(0);
      out.push_back(std::move(n));
    }
    for (const Slice& sl : Slices(out.size(), true)) {
      std::vector<DbParam> params{std::string_view(worker), lease_until_ms};
      for (size_t k = 0; k < sl.size; ++k) {
        const OutboxKey& key = out[sl.Row(k)].key;
        params.emplace_back(key.uid);
        params.emplace_back(std::string_view(key.conv));
        params.emplace_back(key.seq);
      }
      db_->Query(Repeat("UPDATE push_outbox SET tries = tries + 1, claimed_by = ?, due_ms = ?"
                        " WHERE (uid, conv, seq) IN (",
                        "(?,?,?)", ",", sl.size, ")"),
                 params);
    }
    for (const Slice& sl : Slices(spent.size(), true)) {
      std::vector<DbParam> params;
      for (size_t k = 0; k < sl.size; ++k) {
        const OutboxKey& key = spent[sl.Row(k)];
        params.emplace_back(key.uid);
        params.emplace_back(std::string_view(key.conv));
        params.emplace_back(key.seq);
      }
      db_->Query(Repeat("UPDATE push_outbox SET state = 2, claimed_by = NULL,"
                        " last_error = 'tries spent by workers that stopped mid-delivery'"
                        " WHERE (uid, conv, seq) IN (",
                        "(?,?,?)", ",", sl.size, ")"),
                 params);
    }
    db_->Commit();
  } catch (...) {
    db_->Rollback();
    throw;
  }
  *dead += spent.size();
  if (out.empty()) return out;

  // What the notifications say: the message and its sender's name, the recipient's
  // preview setting and devices. Read after the claim's commit (nothing here changes
  // the claim).
  std::set<std::pair<std::string, uint64_t>> messages;
  std::set<uint64_t> uids;
  for (const Notification& n : out) {
    messages.emplace(n.key.conv, n.key.seq);
    uids.insert(n.key.uid);
  }
  struct Msg {
    int64_t ts = 0;
    uint64_t gid = 0;
    std::string text;
    std::string name;
  };
  std::map<std::pair<std::string, uint64_t>, Msg> found;
  const std::vector<std::pair<std::string, uint64_t>> mlist(messages.begin(), messages.end());
  for (const Slice& sl : Slices(mlist.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) {
      params.emplace_back(std::string_view(mlist[sl.Row(k)].first));
      params.emplace_back(mlist[sl.Row(k)].second);
    }
    const std::string sql = Repeat(
        "SELECT m.conv, m.seq, m.ts, m.gid, m.text, u.name FROM messages m"
        " LEFT JOIN users u ON u.uid = m.sender WHERE (m.conv, m.seq) IN (",
        "(?,?)", ",", sl.size, ")");
    for (const DbRow& row : db_->Query(sql, params).rows) {
      found[{row.Str(0).value_or(""), row.Uint(1).value_or(0)}] =
          Msg{row.Int(2).value_or(0), row.Uint(3).value_or(0), row.Str(4).value_or(""),
              row.Str(5).value_or("")};
    }
  }
  std::set<uint64_t> no_preview;
  std::map<uint64_t, std::vector<Device>> devices;
  const std::vector<uint64_t> ulist(uids.begin(), uids.end());
  for (const Slice& sl : Slices(ulist.size(), true)) {
    std::vector<DbParam> params;
    for (size_t k = 0; k < sl.size; ++k) params.emplace_back(ulist[sl.Row(k)]);
    for (const DbRow& row :
         db_->Query(Repeat("SELECT uid FROM push_settings WHERE preview = 0 AND uid IN (", "?", ",",
                           sl.size, ")"),
                    params)
             .rows) {
      no_preview.insert(row.Uint(0).value_or(0));
    }
    for (const DbRow& row :
         db_->Query(Repeat("SELECT uid, platform, token FROM push_devices WHERE uid IN (", "?", ",",
                           sl.size, ") ORDER BY uid, created_ms, platform, token"),
                    params)
             .rows) {
      devices[row.Uint(0).value_or(0)].push_back(
          Device{row.Str(1).value_or(""), row.Str(2).value_or("")});
    }
  }
  for (Notification& n : out) {
    auto m = found.find({n.key.conv, n.key.seq});
    if (m != found.end()) {
      n.ts = m->second.ts;
      n.gid = m->second.gid;
      n.sender_name = m->second.name;
      if (no_preview.count(n.key.uid) == 0) n.text = m->second.text;
    }
    if (auto d = devices.find(n.key.uid); d != devices.end()) n.devices = d->second;
  }
  return out;
}

void PushStore::Delete(const OutboxKey& k) {
  db_->Query("DELETE FROM push_outbox WHERE uid = ? AND conv = ? AND seq = ?",
             {k.uid, std::string_view(k.conv), k.seq});
}

void PushStore::Reschedule(const OutboxKey& k, const std::string& worker, int64_t due_ms,
                           const std::string& error) {
  const std::string e = Clip(error, 255);
  db_->Query(
      "UPDATE push_outbox SET due_ms = ?, claimed_by = NULL, last_error = ?"
      " WHERE uid = ? AND conv = ? AND seq = ? AND state = 0 AND claimed_by = ?",
      {due_ms, std::string_view(e), k.uid, std::string_view(k.conv), k.seq,
       std::string_view(worker)});
}

void PushStore::Kill(const OutboxKey& k, const std::string& worker, const std::string& error) {
  const std::string e = Clip(error, 255);
  db_->Query(
      "UPDATE push_outbox SET state = 2, claimed_by = NULL, last_error = ?"
      " WHERE uid = ? AND conv = ? AND seq = ? AND state = 0 AND claimed_by = ?",
      {std::string_view(e), k.uid, std::string_view(k.conv), k.seq, std::string_view(worker)});
}

}  // namespace imbus::actors::push

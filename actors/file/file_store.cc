#include "actors/file/file_store.h"

#include <mysqld_error.h>

#include <algorithm>
#include <charconv>

#include "actors/db/transaction.h"

namespace imbus::actors::file {
namespace {

constexpr const char* kUploadColumns =
    "upload_id, uid, name, size, mime, sha256, stored, touched_ms";

Upload ToUpload(const DbRow& r) {
  Upload u;
  u.id = r.Str(0).value_or("");
  u.uid = r.Uint(1).value_or(0);
  u.name = r.Str(2).value_or("");
  u.size = r.Uint(3).value_or(0);
  u.mime = r.Str(4).value_or("");
  u.sha256 = r.Str(5).value_or("");
  u.stored = r.Uint(6).value_or(0);
  u.touched_ms = r.Int(7).value_or(0);
  return u;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<Upload> FileStore::Start(uint64_t uid, const std::string& name, uint64_t size,
                                       const std::string& mime, const std::string& sha256,
                                       uint64_t quota, const std::string& new_id, int64_t now_ms,
                                       bool* resumed) {
  return RetryDeadlock([&]() -> std::optional<Upload> {
    Transaction tx(db_);
    db_->Query("SELECT uid FROM users WHERE uid = ? FOR UPDATE", {uid});
    DbResult open = db_->Query(std::string("SELECT ") + kUploadColumns +
                                   " FROM file_uploads WHERE uid = ? AND sha256 = ? AND size = ?"
                                   " AND name = ? FOR UPDATE",
                               {uid, std::string_view(sha256), size, std::string_view(name)});
    if (!open.rows.empty()) {
      Upload u = ToUpload(open.rows[0]);
      db_->Query("UPDATE file_uploads SET touched_ms = ? WHERE upload_id = ?",
                 {now_ms, std::string_view(u.id)});
      tx.Commit();
      u.touched_ms = now_ms;
      *resumed = true;
      return u;
    }
    // A hostile account must not fill the tables with empty files or uploads: every
    // file and open upload counts at least kMinQuotaBytes, and open uploads are few.
    DbResult opened = db_->Query("SELECT COUNT(*) FROM file_uploads WHERE uid = ?", {uid});
    if (opened.rows.at(0).Uint(0).value_or(0) >= kMaxOpenUploads) return std::nullopt;
    if (quota > 0) {
      DbResult used = db_->Query(
          "SELECT COALESCE((SELECT SUM(GREATEST(size, ?)) FROM files WHERE uploader = ?), 0)"
          " + COALESCE((SELECT SUM(GREATEST(size, ?)) FROM file_uploads WHERE uid = ?), 0)",
          {kMinQuotaBytes, uid, kMinQuotaBytes, uid});
      const uint64_t bytes = used.rows.at(0).Uint(0).value_or(0);
      const uint64_t counted = std::max(size, kMinQuotaBytes);
      if (bytes > quota || counted > quota - bytes) return std::nullopt;
    }
    db_->Query(
        "INSERT INTO file_uploads (upload_id, uid, name, size, mime, sha256, stored, touched_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        {std::string_view(new_id), uid, std::string_view(name), size, std::string_view(mime),
         std::string_view(sha256), now_ms});
    tx.Commit();
    *resumed = false;
    return Upload{new_id, uid, name, size, mime, sha256, 0, now_ms};
  });
}

std::optional<Upload> FileStore::GetUpload(const std::string& id, uint64_t uid) {
  DbResult r = db_->Query(std::string("SELECT ") + kUploadColumns +
                              " FROM file_uploads WHERE upload_id = ? AND uid = ?",
                          {std::string_view(id), uid});
  if (r.rows.empty()) return std::nullopt;
  return ToUpload(r.rows[0]);
}

bool FileStore::RecordStored(const std::string& id, uint64_t stored, int64_t now_ms) {
  // The row is found even when nothing changes (the client resent the same chunk
  // within the same millisecond): CLIENT_FOUND_ROWS is not set, so count by SELECT.
  return db_->Query(
                "UPDATE file_uploads SET stored = GREATEST(stored, ?), touched_ms = ? WHERE "
                "upload_id = ?",
                {stored, now_ms, std::string_view(id)})
                 .affected_rows > 0 ||
         !db_->Query("SELECT 1 FROM file_uploads WHERE upload_id = ?", {std::string_view(id)})
              .rows.empty();
}

bool FileStore::DeleteUpload(const std::string& id, uint64_t uid) {
  return db_->Query("DELETE FROM file_uploads WHERE upload_id = ? AND uid = ?",
                    {std::string_view(id), uid})
             .affected_rows > 0;
}

std::optional<FileRecord> FileStore::Complete(const std::string& id, uint64_t uid,
                                              const std::string& file_id,
                                              std::optional<uint32_t> width,
                                              std::optional<uint32_t> height, int64_t now_ms) {
  return RetryDeadlock([&]() -> std::optional<FileRecord> {
    Transaction tx(db_);
    DbResult r = db_->Query(std::string("SELECT ") + kUploadColumns +
                                " FROM file_uploads WHERE upload_id = ? AND uid = ? FOR UPDATE",
                            {std::string_view(id), uid});
    if (r.rows.empty()) return std::nullopt;
    const Upload u = ToUpload(r.rows[0]);
    db_->Query("INSERT IGNORE INTO file_blobs (sha256, size, created_ms) VALUES (?, ?, ?)",
               {std::string_view(u.sha256), u.size, now_ms});
    const DbParam w = width ? DbParam(uint64_t{*width}) : DbParam(nullptr);
    const DbParam h = height ? DbParam(uint64_t{*height}) : DbParam(nullptr);
    db_->Query(
        "INSERT INTO files (file_id, uploader, name, size, mime, sha256, width, height, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {std::string_view(file_id), uid, std::string_view(u.name), u.size, std::string_view(u.mime),
         std::string_view(u.sha256), w, h, now_ms});
    db_->Query("DELETE FROM file_uploads WHERE upload_id = ?", {std::string_view(id)});
    tx.Commit();
    return FileRecord{file_id, uid, u.name, u.size, u.mime, u.sha256, width, height, now_ms};
  });
}

std::optional<FileRecord> FileStore::GetFile(const std::string& file_id) {
  DbResult r = db_->Query(
      "SELECT file_id, uploader, name, size, mime, sha256, width, height, created_ms FROM files"
      " WHERE file_id = ?",
      {std::string_view(file_id)});
  if (r.rows.empty()) return std::nullopt;
  const DbRow& row = r.rows[0];
  FileRecord f;
  f.id = row.Str(0).value_or("");
  f.uploader = row.Uint(1).value_or(0);
  f.name = row.Str(2).value_or("");
  f.size = row.Uint(3).value_or(0);
  f.mime = row.Str(4).value_or("");
  f.sha256 = row.Str(5).value_or("");
  if (!row.IsNull(6)) f.width = static_cast<uint32_t>(row.Uint(6).value_or(0));
  if (!row.IsNull(7)) f.height = static_cast<uint32_t>(row.Uint(7).value_or(0));
  f.created_ms = row.Int(8).value_or(0);
  return f;
}

bool FileStore::MaySee(const FileRecord& f, uint64_t uid) {
  if (f.uploader == uid) return true;
  DbResult grants =
      db_->Query("SELECT conv FROM file_grants WHERE file_id = ?", {std::string_view(f.id)});
  for (const DbRow& row : grants.rows) {
    const std::string conv = row.Str(0).value_or("");
    if (conv.rfind("d:", 0) == 0) {
      const size_t colon = conv.find(':', 2);
      if (colon == std::string::npos) continue;
      const auto lo = ParseUint(std::string_view(conv).substr(2, colon - 2));
      const auto hi = ParseUint(std::string_view(conv).substr(colon + 1));
      if ((lo && *lo == uid) || (hi && *hi == uid)) return true;
    } else if (conv.rfind("g:", 0) == 0) {
      const auto gid = ParseUint(std::string_view(conv).substr(2));
      if (!gid) continue;
      if (!db_->Query("SELECT 1 FROM group_members WHERE gid = ? AND uid = ?", {*gid, uid})
               .rows.empty()) {
        return true;
      }
    }
  }
  return false;
}

std::vector<std::string> FileStore::DeleteExpired(int64_t before_ms, size_t limit) {
  return RetryDeadlock([&] {
    std::vector<std::string> ids;
    db_->Begin(false, Db::Isolation::kReadCommitted);
    try {
      DbResult r = db_->Query(
          "SELECT upload_id FROM file_uploads WHERE touched_ms < ? ORDER BY touched_ms LIMIT ?"
          " FOR UPDATE SKIP LOCKED",
          {before_ms, static_cast<uint64_t>(limit)});
      for (const DbRow& row : r.rows) {
        ids.push_back(row.Str(0).value_or(""));
        db_->Query("DELETE FROM file_uploads WHERE upload_id = ?", {std::string_view(ids.back())});
      }
      db_->Commit();
    } catch (...) {
      db_->Rollback();
      throw;
    }
    return ids;
  });
}

std::vector<std::string> FileStore::OpenUploads(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  for (const std::string& id : ids) {
    if (!db_->Query("SELECT 1 FROM file_uploads WHERE upload_id = ?", {std::string_view(id)})
             .rows.empty()) {
      out.push_back(id);
    }
  }
  return out;
}

}  // namespace imbus::actors::file

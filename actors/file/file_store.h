// Public. FileStore: the FILE service's MariaDB metadata (schema migration 8:
// file_uploads, files, file_blobs, file_grants; reads of group_members). The bytes
// are the BlobStore's; a row here says what they are. Grants are written by the
// msg service (MSG/SEND `file`); here they are only read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/db/db.h"

namespace imbus::actors::file {

struct Upload {
  std::string id;
  uint64_t uid = 0;
  std::string name;
  uint64_t size = 0;
  std::string mime;
  std::string sha256;   // 32 bytes
  uint64_t stored = 0;  // bytes recorded as durably written
  int64_t touched_ms = 0;
};

struct FileRecord {
  std::string id;
  uint64_t uploader = 0;
  std::string name;
  uint64_t size = 0;
  std::string mime;
  std::string sha256;
  std::optional<uint32_t> width;
  std::optional<uint32_t> height;
  int64_t created_ms = 0;
};

class FileStore {
 public:
  // Every file and open upload counts at least this much toward the quota.
  static constexpr uint64_t kMinQuotaBytes = 4096;
  // Open uploads one user may have at once (beyond: QUOTA_EXCEEDED).
  static constexpr uint64_t kMaxOpenUploads = 64;

  explicit FileStore(Db* db) : db_(db) {}

  // UPLOAD_START: `uid`'s open upload of (name, size, sha256) if there is one
  // (touched, resumed: *resumed true), else a new one with id `new_id`, unless the
  // user's files plus open uploads plus `size` exceed `quota` (0: none; each counts
  // at least kMinQuotaBytes) or the user has kMaxOpenUploads open, which answers
  // nullopt. Serialized per user (the users row is locked), so two STARTs at
  // once cannot both pass the quota.
  std::optional<Upload> Start(uint64_t uid, const std::string& name, uint64_t size,
                              const std::string& mime, const std::string& sha256, uint64_t quota,
                              const std::string& new_id, int64_t now_ms, bool* resumed);
  // The open upload `id` if it is `uid`'s.
  std::optional<Upload> GetUpload(const std::string& id, uint64_t uid);
  // Bytes up to `stored` are durably written (never lowers it); touches the upload.
  // false when the upload is no longer open.
  bool RecordStored(const std::string& id, uint64_t stored, int64_t now_ms);
  // Deletes `uid`'s open upload `id`; false when there was none.
  bool DeleteUpload(const std::string& id, uint64_t uid);
  // FINISH: in one transaction, the upload `id` of `uid` becomes file `file_id` (its
  // content row added unless there), and the upload row goes. nullopt when the
  // upload is no longer open (finished or cancelled meanwhile).
  std::optional<FileRecord> Complete(const std::string& id, uint64_t uid,
                                     const std::string& file_id, std::optional<uint32_t> width,
                                     std::optional<uint32_t> height, int64_t now_ms);

  std::optional<FileRecord> GetFile(const std::string& file_id);
  // The uploader, or a member of a conversation in file_grants (d:lo:hi: the two
  // users; g:gid: the group's members now).
  bool MaySee(const FileRecord& f, uint64_t uid);

  // Expiry: deletes up to `limit` open uploads last touched before `before_ms`
  // (rows locked by someone else are skipped) and returns their ids.
  std::vector<std::string> DeleteExpired(int64_t before_ms, size_t limit);
  // Which of `ids` are open uploads.
  std::vector<std::string> OpenUploads(const std::vector<std::string>& ids);

 private:
  Db* db_;  // not owned
};

}  // namespace imbus::actors::file

// Public. FileService: the FILE service (docs/protocol.md 6.9, service 8): chunked,
// resumable uploads (UPLOAD_START/CHUNK/FINISH/CANCEL), FILE_INFO and DOWNLOAD.
// Bytes go to a BlobStore shared by every worker (and every file actor, through a
// shared directory); metadata to MariaDB (FileStore). A chunk is recorded as stored
// only after its bytes are durable, so a kill at any moment resumes correctly (a
// chunk written but not recorded is simply sent again). FINISH hashes the whole
// upload on the offload pool (service.h, Offload), not on the worker thread, so the
// worker keeps heartbeating and serving meanwhile. One instance per worker thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/file/blob_store.h"
#include "actors/file/file_store.h"
#include "actors/service.h"
#include "metrics/metrics.h"

namespace imbus::actors::file {

inline constexpr size_t kMaxName = 255;
inline constexpr size_t kMaxMime = 127;
inline constexpr size_t kMaxId = 64;
inline constexpr uint64_t kDefaultChunk = 32768;

class FileService : public Service {
 public:
  struct Options {
    std::shared_ptr<BlobStore> blobs;  // required
    uint64_t max_size = 256ull << 20;  // the largest file
    uint64_t quota = 1ull << 30;       // per user: files + open uploads; 0: none
    uint64_t chunk = kDefaultChunk;    // the largest `data` in one frame
    std::function<int64_t()> now_ms;   // default: the system clock
  };
  FileService(Db* db, Options options);

 private:
  void UploadStart(const Request& req, Reply* reply);
  void UploadChunk(const Request& req, Reply* reply);
  void UploadFinish(const Request& req, Reply* reply);
  void UploadCancel(const Request& req, Reply* reply);
  void FileInfo(const Request& req, Reply* reply);
  void Download(const Request& req, Reply* reply);

  // The caller's open upload named in the request, with the offset up to which its
  // bytes are both recorded and present; NOT_FOUND otherwise.
  Upload OpenUpload(const Request& req, uint64_t* stored);
  // The file named in the request if the caller may see it; NOT_FOUND otherwise.
  FileRecord VisibleFile(const Request& req);

  FileStore store_;
  Options options_;
  metrics::Counter finished_;
  metrics::Counter deduped_;
  metrics::Counter bytes_in_;
  metrics::Counter bytes_out_;
};

// A file object (docs/protocol.md 6.9) as an OK body.
std::string FileObjectBody(const FileRecord& f);
// A random id: 32 hex digits.
std::string NewId();

// Expiry of open uploads untouched since before `before_ms`: rows first (several
// file actors may run this at once: rows locked by one are skipped by the others),
// then their partials; then partials with no row (left by a kill between the two
// steps) and leftover tmp files, if older than `before_ms`. Returns the uploads
// removed.
size_t ExpireUploads(FileStore& store, BlobStore& blobs, int64_t before_ms);

// The background task of a file actor: ExpireUploads every ttl/4 (1 s..60 s), with
// its own MariaDB connection.
class FileExpiry : public BackgroundTask {
 public:
  FileExpiry(const DbConfig& db, std::shared_ptr<BlobStore> blobs, int64_t ttl_ms);
  void Run(const std::atomic<bool>& stop) override;

 private:
  DbConfig db_config_;
  std::shared_ptr<BlobStore> blobs_;
  int64_t ttl_ms_;
};

}  // namespace imbus::actors::file

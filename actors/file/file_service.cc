#include "actors/file/file_service.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/file/image_size.h"
#include "codec/utf8.h"
#include "net/clock.h"

namespace imbus::actors::file {
namespace {

using codec::Code;

void Bin(codec::MapWriter& w, std::string_view key, std::string_view bytes) {
  w.Key(key);
  w.packer().pack_bin(static_cast<uint32_t>(bytes.size()));
  w.packer().pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

// Ids we hand out are 32 lowercase hex digits; anything else names nothing (and is
// never used in a path).
bool IsOurId(const std::string& id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// An id as error strings may quote it: a client's id that is not one of ours may be
// any bytes (not UTF-8), and every str the server sends must be UTF-8.
std::string Shown(const std::string& id) { return IsOurId(id) ? id : "(not an id of ours)"; }

std::string RequireId(const codec::Body& body, const char* key) {
  std::string id = body.RequireString(key);
  if (id.empty() || id.size() > kMaxId) {
    throw RequestError(Code::kBadRequest, std::string(key) + " must be 1-64 bytes");
  }
  return id;
}

void CheckName(const std::string& name) {
  if (name.empty() || name.size() > kMaxName) {
    throw RequestError(Code::kBadRequest, "name must be 1-255 bytes");
  }
  if (!codec::IsValidUtf8(name)) throw RequestError(Code::kBadRequest, "name must be UTF-8");
  for (unsigned char c : name) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) {
      throw RequestError(Code::kBadRequest, "name must have no /, \\ or control characters");
    }
  }
}

void CheckMime(const std::string& mime) {
  const bool ok =
      !mime.empty() && mime.size() <= kMaxMime &&
      std::all_of(mime.begin(), mime.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (!ok) throw RequestError(Code::kBadRequest, "mime must be 1-127 bytes of printable ASCII");
}

}  // namespace

std::string NewId() {
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  return HexOf(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

std::string FileObjectBody(const FileRecord& f) {
  const bool dims = f.width && f.height;
  OkWriter w(dims ? 9 : 7);
  w.Key("file").Str(f.id);
  w.Key("name").Str(f.name);
  w.Key("size").Uint(f.size);
  w.Key("mime").Str(f.mime);
  Bin(w, "sha256", f.sha256);
  w.Key("from").Uint(f.uploader);
  w.Key("ts").Int(f.created_ms);
  if (dims) {
    w.Key("width").Uint(*f.width);
    w.Key("height").Uint(*f.height);
  }
  return w.Finish();
}

FileService::FileService(Db* db, Options options) : store_(db), options_(std::move(options)) {
  if (!options_.blobs) throw std::invalid_argument("FileService needs a blob store");
  if (!options_.now_ms) options_.now_ms = net::WallNowMs;
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  Handles(codec::file::kUploadStart, &FileService::UploadStart);
  Handles(codec::file::kUploadChunk, &FileService::UploadChunk);
  Handles(codec::file::kUploadFinish, &FileService::UploadFinish);
  Handles(codec::file::kUploadCancel, &FileService::UploadCancel);
  Handles(codec::file::kFileInfo, &FileService::FileInfo);
  Handles(codec::file::kDownload, &FileService::Download);
  finished_ = metrics::GetCounter("imbus_file_uploads_finished_total",
                                  "Uploads finished (files made) by this process.");
  deduped_ =
      metrics::GetCounter("imbus_file_uploads_deduplicated_total",
                          "Finished uploads whose bytes were already stored (nothing new stored).");
  bytes_in_ = metrics::GetCounter("imbus_file_bytes_in_total",
                                  "Bytes of UPLOAD_CHUNK data written by this process.");
  bytes_out_ = metrics::GetCounter("imbus_file_bytes_out_total",
                                   "Bytes of DOWNLOAD data served by this process.");
}

Upload FileService::OpenUpload(const Request& req, uint64_t* stored) {
  const std::string id = RequireId(req.body, "upload");
  std::optional<Upload> u;
  if (IsOurId(id)) u = store_.GetUpload(id, req.meta.uid);
  if (!u) throw RequestError(Code::kNotFound, "no open upload " + Shown(id));
  // What is recorded and also on disk (a lost partial counts as nothing stored).
  *stored = std::min(u->stored, options_.blobs->PartialSize(u->id));
  return *u;
}

FileRecord FileService::VisibleFile(const Request& req) {
  const std::string id = RequireId(req.body, "file");
  std::optional<FileRecord> f;
  if (IsOurId(id)) f = store_.GetFile(id);
  // The same answer for a file that does not exist and one the caller may not see.
  if (!f || !store_.MaySee(*f, req.meta.uid)) {
    throw RequestError(Code::kNotFound, "no such file " + Shown(id));
  }
  return *f;
}

void FileService::UploadStart(const Request& req, Reply* reply) {
  const std::string name = req.body.RequireString("name");
  CheckName(name);
  const uint64_t size = req.body.RequireUint("size");
  const std::string sha256 = req.body.RequireString("sha256");
  if (sha256.size() != crypto_hash_sha256_BYTES) {
    throw RequestError(Code::kBadRequest, "sha256 must be 32 bytes");
  }
  const std::string mime = req.body.GetString("mime").value_or("application/octet-stream");
  CheckMime(mime);
  if (size > options_.max_size) {
    throw RequestError(Code::kTooLarge,
                       "size is over the largest file (" + std::to_string(options_.max_size) + ")");
  }
  bool resumed = false;
  std::optional<Upload> u = store_.Start(req.meta.uid, name, size, mime, sha256, options_.quota,
                                         NewId(), options_.now_ms(), &resumed);
  if (!u) {
    throw RequestError(Code::kQuotaExceeded,
                       "over the storage quota (" + std::to_string(options_.quota) +
                           " bytes, each file at least 4 KiB) or too many open uploads (64)");
  }
  uint64_t offset = 0;
  if (resumed) {
    offset = std::min(u->stored, options_.blobs->PartialSize(u->id));
  } else {
    options_.blobs->CreatePartial(u->id);
  }
  OkWriter w(3);
  w.Key("upload").Str(u->id);
  w.Key("chunk").Uint(options_.chunk);
  w.Key("offset").Uint(offset);
  reply->body = w.Finish();
}

void FileService::UploadChunk(const Request& req, Reply* reply) {
  const uint64_t offset = req.body.RequireUint("offset");
  const std::string data = req.body.RequireString("data");
  uint64_t stored = 0;
  const Upload u = OpenUpload(req, &stored);
  if (data.size() > options_.chunk) {
    throw RequestError(Code::kTooLarge,
                       "data is longer than the chunk (" + std::to_string(options_.chunk) + ")");
  }
  if (offset > stored) {
    // CONFLICT carries where to continue: an error body with one field more, so it
    // is written here rather than thrown.
    codec::MapWriter w(3);
    w.Key("code").Int(static_cast<int64_t>(Code::kConflict));
    w.Key("error").Str("offset is past the stored offset");
    w.Key("offset").Uint(stored);
    reply->body = w.Finish();
    return;
  }
  if (offset > u.size || data.size() > u.size - offset) {
    throw RequestError(Code::kTooLarge, "data reaches past size");
  }
  uint64_t now_stored = stored;
  if (!data.empty()) {
    // Durable first, recorded second: a kill between the two only loses the record,
    // and the client sends the chunk again from the recorded offset.
    options_.blobs->WritePartial(u.id, offset, data);
    now_stored = std::max(stored, offset + data.size());
    if (!store_.RecordStored(u.id, now_stored, options_.now_ms())) {
      throw RequestError(Code::kNotFound, "no open upload " + u.id);
    }
    bytes_in_.Inc(static_cast<double>(data.size()));
  }
  OkWriter w(1);
  w.Key("offset").Uint(now_stored);
  reply->body = w.Finish();
}

void FileService::UploadFinish(const Request& req, Reply* reply) {
  uint64_t stored = 0;
  const Upload u = OpenUpload(req, &stored);
  if (stored != u.size) {
    store_.DeleteUpload(u.id, u.uid);
    options_.blobs->RemovePartial(u.id);
    throw RequestError(Code::kMismatch, std::to_string(stored) + " of " + std::to_string(u.size) +
                                            " bytes stored; the upload is discarded");
  }
  // Hashing up to the largest file takes a while: on the offload pool. Nothing has
  // changed yet (a full pool answers RATE_LIMITED and the client finishes again).
  struct Result {
    FinishResult finish;
    std::optional<Dimensions> dims;
  };
  auto result = std::make_shared<Result>();
  reply->offload.work = [blobs = options_.blobs, u, result] {
    result->finish = blobs->Finish(u.id, u.size, u.sha256);
    result->dims = ImageSize(result->finish.head);
    result->finish.head.clear();
  };
  reply->offload.then = [this, u, result](const Request&, Reply* r) {
    if (result->finish.outcome != FinishResult::Outcome::kStored) {
      store_.DeleteUpload(u.id, u.uid);
      options_.blobs->RemovePartial(u.id);
      throw RequestError(Code::kMismatch,
                         result->finish.outcome == FinishResult::Outcome::kSizeMismatch
                             ? "size differs; the upload is discarded"
                             : "sha256 differs; the upload is discarded");
    }
    std::optional<uint32_t> width, height;
    if (result->dims) {
      width = result->dims->width;
      height = result->dims->height;
    }
    std::optional<FileRecord> f =
        store_.Complete(u.id, u.uid, NewId(), width, height, options_.now_ms());
    if (!f) throw RequestError(Code::kNotFound, "no open upload " + u.id);
    options_.blobs->RemovePartial(u.id);
    finished_.Inc();
    if (!result->finish.stored_new) deduped_.Inc();
    r->body = FileObjectBody(*f);
  };
}

void FileService::UploadCancel(const Request& req, Reply* reply) {
  const std::string id = RequireId(req.body, "upload");
  if (!IsOurId(id) || !store_.DeleteUpload(id, req.meta.uid)) {
    throw RequestError(Code::kNotFound, "no open upload " + Shown(id));
  }
  options_.blobs->RemovePartial(id);
  reply->body = OkWriter(0).Finish();
}

void FileService::FileInfo(const Request& req, Reply* reply) {
  reply->body = FileObjectBody(VisibleFile(req));
}

void FileService::Download(const Request& req, Reply* reply) {
  const uint64_t offset = req.body.RequireUint("offset");
  const uint64_t length = req.body.GetUint("length").value_or(options_.chunk);
  if (length < 1 || length > options_.chunk) {
    throw RequestError(Code::kBadRequest, "length must be 1.." + std::to_string(options_.chunk));
  }
  const FileRecord f = VisibleFile(req);
  if (offset > f.size) throw RequestError(Code::kBadRequest, "offset is past the file's size");
  const auto n = static_cast<size_t>(std::min(length, f.size - offset));
  std::string data;
  if (n > 0) {
    data = options_.blobs->Read(f.sha256, offset, n);
    if (data.size() != n) {
      throw std::runtime_error("content of file " + f.id + " is shorter than its size");
    }
  }
  bytes_out_.Inc(static_cast<double>(n));
  OkWriter w(3);
  Bin(w, "data", data);
  w.Key("offset").Uint(offset);
  w.Key("size").Uint(f.size);
  reply->body = w.Finish();
}

size_t ExpireUploads(FileStore& store, BlobStore& blobs, int64_t before_ms) {
  size_t removed = 0;
  for (;;) {
    const std::vector<std::string> ids = store.DeleteExpired(before_ms, 64);
    for (const std::string& id : ids) blobs.RemovePartial(id);
    removed += ids.size();
    if (ids.size() < 64) break;
  }
  // Partials with no row: a kill between the row's delete and the partial's (here or
  // in FINISH/CANCEL), or a chunk written while its upload expired.
  std::vector<std::string> stale = blobs.PartialsOlderThan(before_ms);
  std::vector<std::string> open = store.OpenUploads(stale);
  for (const std::string& id : stale) {
    if (std::find(open.begin(), open.end(), id) == open.end()) blobs.RemovePartial(id);
  }
  blobs.RemoveTmpOlderThan(before_ms);
  return removed;
}

FileExpiry::FileExpiry(const DbConfig& db, std::shared_ptr<BlobStore> blobs, int64_t ttl_ms)
    : db_config_(db), blobs_(std::move(blobs)), ttl_ms_(ttl_ms) {}

void FileExpiry::Run(const std::atomic<bool>& stop) {
  Db db(db_config_);
  FileStore store(&db);
  const int64_t period_ms = std::clamp<int64_t>(ttl_ms_ / 4, 1000, 60000);
  while (!stop.load()) {
    try {
      const size_t n = ExpireUploads(store, *blobs_, net::WallNowMs() - ttl_ms_);
      if (n > 0) spdlog::info("file: {} expired uploads discarded", n);
    } catch (const std::exception& e) {
      spdlog::warn("file: expiry failed: {}", e.what());
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(period_ms);
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace imbus::actors::file

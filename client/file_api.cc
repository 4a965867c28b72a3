#include "client/file_api.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "client/wire.h"
#include "codec/body.h"
#include "codec/commands.h"
#include "net/unique_fd.h"

namespace imbus::client {
namespace {

using codec::BytesIn;
using codec::FieldIn;
using codec::IntIn;
using codec::StringIn;
using codec::UintIn;
using wire::Typed;

constexpr uint16_t kFile = codec::ToWire(codec::Service::kFile);
constexpr uint16_t kMsg = codec::ToWire(codec::Service::kMsg);

void PackBin(codec::MapWriter& w, std::string_view bytes) {
  w.packer().pack_bin(static_cast<uint32_t>(bytes.size()));
  w.packer().pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

FileInfo FileOfBody(const codec::Body& b) { return codec::FileObjectIn(b.root()); }

// Worth reconnecting for: the connection or the server was briefly gone.
bool Transient(int code) {
  return code == kCodeDisconnected || code == kCodeTimeout ||
         code == static_cast<int>(codec::Code::kUnavailable);
}

// RATE_LIMITED (a limit or a busy server, docs/protocol.md section 3): the request was
// not carried out; waits `retry_ms` (at least 1, at most 5 s) and says to send it
// again, a bounded number of times per transfer.
bool WaitIfLimited(int code, int64_t retry_ms, int* waits) {
  if (code != static_cast<int>(codec::Code::kRateLimited) || (*waits)++ >= 100000) return false;
  std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp<int64_t>(retry_ms, 1, 5000)));
  return true;
}

template <typename T>
Result<T> LocalFailure(std::string what) {
  Result<T> r;
  r.code = kCodeLocal;
  r.error = std::move(what);
  return r;
}

template <typename T, typename U>
Result<T> FailureOf(const Result<U>& from) {
  Result<T> r;
  r.code = from.code;
  r.error = from.error;
  r.retry_ms = from.retry_ms;
  return r;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Hashes the first `limit` bytes of fd (from its start) into *state.
bool HashPrefix(int fd, uint64_t limit, crypto_hash_sha256_state* state, uint64_t* hashed) {
  std::string buf(1 << 16, '\0');
  *hashed = 0;
  while (*hashed < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - *hashed));
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(*hashed));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    crypto_hash_sha256_update(state, reinterpret_cast<const unsigned char*>(buf.data()),
                              static_cast<unsigned long long>(n));
    *hashed += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

std::optional<FileInfo> FileOfMessage(const msgpack::object& message) {
  try {
    const msgpack::object* f = FieldIn(message, "file");
    if (f == nullptr || f->type != msgpack::type::MAP) return std::nullopt;
    return codec::FileObjectIn(*f);
  } catch (const codec::BadField&) {
    return std::nullopt;
  }
}

std::string HexOf(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string GuessMime(std::string_view name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::pair<const char*, const char*> kTypes[] = {
      {"png", "image/png"},       {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},       {"webp", "image/webp"},       {"svg", "image/svg+xml"},
      {"txt", "text/plain"},      {"md", "text/markdown"},      {"html", "text/html"},
      {"csv", "text/csv"},        {"json", "application/json"}, {"pdf", "application/pdf"},
      {"zip", "application/zip"}, {"gz", "application/gzip"},   {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},       {"mp4", "video/mp4"},         {"webm", "video/webm"},
  };
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string HumanSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1000 && unit < 4) {
    v /= 1000;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

bool Sha256OfFile(const std::string& path, std::string* digest, uint64_t* size, std::string* error,
                  uint64_t limit) {
  net::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  if (!HashPrefix(fd.get(), limit, &state, size)) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, out);
  digest->assign(reinterpret_cast<const char*>(out), sizeof out);
  return true;
}

Result<UploadStarted> UploadStart(Client& c, std::string_view name, uint64_t size,
                                  std::string_view sha256, std::string_view mime) {
  codec::MapWriter w(mime.empty() ? 3 : 4);
  w.Key("name").Str(name);
  w.Key("size").Uint(size);
  w.Key("sha256");
  PackBin(w, sha256);
  if (!mime.empty()) w.Key("mime").Str(mime);
  return Typed<UploadStarted>(
      c.Call(kFile, codec::file::kUploadStart, w.Finish()), [](const codec::Body& b) {
        return UploadStarted{b.RequireString("upload"), b.RequireUint("chunk"),
                             b.GetUint("offset").value_or(0)};
      });
}

Result<uint64_t> UploadChunk(Client& c, std::string_view upload, uint64_t offset,
                             std::string_view data) {
  codec::MapWriter w(3);
  w.Key("upload").Str(upload);
  w.Key("offset").Uint(offset);
  w.Key("data");
  PackBin(w, data);
  Response r = c.Call(kFile, codec::file::kUploadChunk, w.Finish());
  if (r.code == static_cast<int>(codec::Code::kConflict)) {
    Result<uint64_t> out;
    out.code = r.code;
    out.error = r.error;
    try {
      out.value = r.body.GetUint("offset").value_or(0);
    } catch (const codec::BadField&) {
      out.value = 0;
    }
    return out;
  }
  return Typed<uint64_t>(std::move(r),
                         [](const codec::Body& b) { return b.RequireUint("offset"); });
}

Result<FileInfo> UploadFinish(Client& c, std::string_view upload) {
  codec::MapWriter w(1);
  w.Key("upload").Str(upload);
  return Typed<FileInfo>(c.Call(kFile, codec::file::kUploadFinish, w.Finish()), FileOfBody);
}

Result<Empty> UploadCancel(Client& c, std::string_view upload) {
  codec::MapWriter w(1);
  w.Key("upload").Str(upload);
  return Typed<Empty>(c.Call(kFile, codec::file::kUploadCancel, w.Finish()),
                      [](const codec::Body&) { return Empty{}; });
}

Result<FileInfo> GetFileInfo(Client& c, std::string_view file) {
  codec::MapWriter w(1);
  w.Key("file").Str(file);
  return Typed<FileInfo>(c.Call(kFile, codec::file::kFileInfo, w.Finish()), FileOfBody);
}

namespace {

std::string DownloadBody(std::string_view file, uint64_t offset, uint64_t length) {
  codec::MapWriter w(length != 0 ? 3 : 2);
  w.Key("file").Str(file);
  w.Key("offset").Uint(offset);
  if (length != 0) w.Key("length").Uint(length);
  return w.Finish();
}

ChunkData ChunkOf(const codec::Body& b) {
  return ChunkData{BytesIn(b.root(), "data"), b.RequireUint("offset"), b.RequireUint("size")};
}

Result<SentMessage> SendFile(Client& c, std::string_view target, uint64_t id, std::string_view cmid,
                             std::string_view file, std::string_view text) {
  codec::MapWriter w(text.empty() ? 3 : 4);
  w.Key(target).Uint(id);
  w.Key("cmid").Str(cmid);
  w.Key("file").Str(file);
  if (!text.empty()) w.Key("text").Str(text);
  return Typed<SentMessage>(c.Call(kMsg, codec::msg::kSend, w.Finish()), [](const codec::Body& b) {
    return SentMessage{StringIn(b.root(), "conv"), UintIn(b.root(), "seq"), IntIn(b.root(), "ts")};
  });
}

}  // namespace

Result<ChunkData> Download(Client& c, std::string_view file, uint64_t offset, uint64_t length) {
  return Typed<ChunkData>(c.Call(kFile, codec::file::kDownload, DownloadBody(file, offset, length)),
                          ChunkOf);
}

Result<SentMessage> SendFileToUser(Client& c, uint64_t uid, std::string_view cmid,
                                   std::string_view file, std::string_view text) {
  return SendFile(c, "to", uid, cmid, file, text);
}

Result<SentMessage> SendFileToGroup(Client& c, uint64_t gid, std::string_view cmid,
                                    std::string_view file, std::string_view text) {
  return SendFile(c, "gid", gid, cmid, file, text);
}

Result<FileInfo> UploadFile(Client& c, const std::string& path, const TransferOptions& options) {
  std::string digest, error;
  uint64_t size = 0;
  if (sodium_init() < 0) return LocalFailure<FileInfo>("libsodium failed to initialise");
  if (!Sha256OfFile(path, &digest, &size, &error)) return LocalFailure<FileInfo>(error);
  net::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return LocalFailure<FileInfo>("cannot open " + path + ": " + std::strerror(errno));
  const std::string name = options.name.empty() ? BaseName(path) : options.name;
  const std::string mime = options.mime.empty() ? GuessMime(name) : options.mime;
  int retries = 0;
  int waits = 0;
  // Reconnects after a transient failure; false when out of retries or it failed.
  auto recover = [&](int code) {
    return Transient(code) && options.reconnect && retries++ < options.max_retries &&
           options.reconnect();
  };
  std::string buf;
  for (;;) {
    Result<UploadStarted> started = UploadStart(c, name, size, digest, mime);
    if (!started.ok()) {
      if (WaitIfLimited(started.code, started.retry_ms, &waits) || recover(started.code)) continue;
      return FailureOf<FileInfo>(started);
    }
    uint64_t offset = std::min(started.value.offset, size);
    const uint64_t chunk = std::max<uint64_t>(started.value.chunk, 1);
    bool restart = false;
    while (offset < size) {
      buf.resize(static_cast<size_t>(std::min(chunk, size - offset)));
      const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n != static_cast<ssize_t>(buf.size())) {
        return LocalFailure<FileInfo>("cannot read " + path + " (did it change?)");
      }
      Result<uint64_t> stored = UploadChunk(c, started.value.upload, offset, buf);
      if (stored.code == static_cast<int>(codec::Code::kConflict)) {
        offset = std::min(stored.value, size);  // the server's stored offset
        continue;
      }
      if (WaitIfLimited(stored.code, stored.retry_ms, &waits)) continue;  // the same chunk
      if (!stored.ok()) {
        if (!recover(stored.code)) return FailureOf<FileInfo>(stored);
        restart = true;  // UPLOAD_START again says where to continue
        break;
      }
      offset = std::min(stored.value, size);
      if (options.progress) options.progress(offset, size);
    }
    if (restart) continue;
    if (options.progress && size == 0) options.progress(0, 0);
    Result<FileInfo> done = UploadFinish(c, started.value.upload);
    while (WaitIfLimited(done.code, done.retry_ms, &waits)) {
      done = UploadFinish(c, started.value.upload);
    }
    if (!done.ok() && recover(done.code)) continue;  // a lost answer: START tells
    return done;
  }
}

std::string FreePath(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path;
  for (int i = 1;; ++i) {
    std::string p = path + "." + std::to_string(i);
    if (::stat(p.c_str(), &st) != 0) return p;
  }
}

Result<Downloaded> DownloadFile(Client& c, std::string_view file, const std::string& path,
                                const TransferOptions& options) {
  if (sodium_init() < 0) return LocalFailure<Downloaded>("libsodium failed to initialise");
  int retries = 0;
  int waits = 0;
  auto recover = [&](int code) {
    return Transient(code) && options.reconnect && retries++ < options.max_retries &&
           options.reconnect();
  };
  Result<FileInfo> info;
  for (;;) {
    info = GetFileInfo(c, file);
    if (info.ok()) break;
    if (!WaitIfLimited(info.code, info.retry_ms, &waits) && !recover(info.code)) break;
  }
  if (!info.ok()) return FailureOf<Downloaded>(info);
  const uint64_t size = info.value.size;
  const std::string part = path + ".part";
  net::UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return LocalFailure<Downloaded>("cannot open " + part + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return LocalFailure<Downloaded>("cannot stat " + part);
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have > size) {  // not a beginning of this file
    if (::ftruncate(fd.get(), 0) != 0) return LocalFailure<Downloaded>("cannot truncate " + part);
    have = 0;
  }
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  uint64_t hashed = 0;
  if (!HashPrefix(fd.get(), have, &state, &hashed) || hashed != have) {
    return LocalFailure<Downloaded>("cannot read " + part);
  }
  Result<Downloaded> out;
  out.value.info = info.value;
  out.value.resumed_from = have;
  if (::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0) {
    return LocalFailure<Downloaded>("cannot seek " + part);
  }
  if (options.progress) options.progress(have, size);

  uint64_t chunk = 0;  // learnt from the first answer
  Connection& conn = c.connection();
  const uint16_t kDl = codec::file::kDownload;
  while (have < size) {
    // The first DOWNLOAD (and the one after any hiccup) is alone: its answer tells the
    // server's chunk size; then up to `window` are in flight.
    std::deque<std::pair<uint32_t, uint64_t>> inflight;  // seq, offset
    uint64_t next = have;
    const size_t window = chunk == 0 ? 1 : std::max<size_t>(options.window, 1);
    int failure = 0;
    int64_t retry_ms = 0;
    std::string failure_text;
    while (have < size) {
      while (inflight.size() < window && next < size) {
        const uint32_t seq = conn.Send(kFile, kDl, DownloadBody(file, next, chunk));
        if (seq == 0) break;
        inflight.emplace_back(seq, next);
        next += chunk == 0 ? size : chunk;
      }
      if (inflight.empty()) {
        failure = kCodeDisconnected;
        failure_text = conn.close_reason();
        break;
      }
      Response r = conn.WaitResponse(inflight.front().first, c.timeout());
      const uint64_t at = inflight.front().second;
      inflight.pop_front();
      if (!r.ok()) {
        failure = r.code;
        failure_text = r.error;
        retry_ms = r.retry_ms;
        break;
      }
      ChunkData d;
      try {
        d = ChunkOf(r.body);
      } catch (const codec::BadField& e) {
        return LocalFailure<Downloaded>(std::string("bad DOWNLOAD answer: ") + e.what());
      }
      if (d.offset != at || at != have || (d.data.empty() && have < size) || d.size != size ||
          d.data.size() > size - have) {
        failure = kCodeBadResponse;
        failure_text = "unexpected DOWNLOAD answer";
        break;
      }
      if (!WriteAll(fd.get(), d.data.data(), d.data.size())) {
        return LocalFailure<Downloaded>("cannot write " + part + ": " + std::strerror(errno));
      }
      crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(d.data.data()),
                                d.data.size());
      have += d.data.size();
      out.value.fetched += d.data.size();
      if (options.progress) options.progress(have, size);
      if (chunk == 0) {
        chunk = d.data.size();
        break;  // start the pipeline with the chunk size known
      }
      if (have < size && d.data.size() < chunk) {
        failure = kCodeBadResponse;  // a short answer mid-file: re-align
        failure_text = "short DOWNLOAD answer";
        break;
      }
    }
    // Answers still in flight would stay queued in the connection: take them out.
    if (failure != kCodeTimeout) {
      for (const auto& [seq, at] : inflight) (void)conn.WaitResponse(seq, c.timeout());
    }
    if (failure == 0) continue;
    if (WaitIfLimited(failure, retry_ms, &waits)) continue;  // from `have` again
    if (failure == kCodeBadResponse) {
      if (retries++ < options.max_retries) {
        chunk = 0;
        continue;
      }
    } else if (recover(failure)) {
      continue;
    }
    out.code = failure;
    out.error = failure_text;
    return out;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  if (std::string_view(reinterpret_cast<const char*>(digest), sizeof digest) != info.value.sha256) {
    fd.Reset();
    ::unlink(part.c_str());
    out.code = static_cast<int>(codec::Code::kMismatch);
    out.error = "the downloaded bytes' sha256 is " +
                HexOf(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest)) +
                ", the file's " + HexOf(info.value.sha256) + " (the .part was removed)";
    return out;
  }
  if (::fsync(fd.get()) != 0) return LocalFailure<Downloaded>("cannot sync " + part);
  fd.Reset();
  const std::string final_path = options.no_clobber ? FreePath(path) : path;
  if (::rename(part.c_str(), final_path.c_str()) != 0) {
    return LocalFailure<Downloaded>("cannot rename " + part + ": " + std::strerror(errno));
  }
  out.value.path = final_path;
  out.code = 0;
  return out;
}

}  // namespace imbus::client

#include "actors/file/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace imbus::actors::file {
namespace {

[[noreturn]] void Fail(const std::string& what, const std::string& path) {
  throw std::runtime_error("blob store: " + what + " " + path + ": " + std::strerror(errno));
}

// A file descriptor closed at the end of the scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

void MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) Fail("cannot make", path);
}

void SyncDir(const std::string& path) {
  Fd d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.ok()) ::fsync(d.get());
}

void WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      Fail("cannot write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

// Names in `dir` (not . and ..) with their mtime before `before_ms`.
std::vector<std::string> OlderThan(const std::string& dir, int64_t before_ms) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::stat((dir + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (MtimeMs(st) < before_ms) out.push_back(name);
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::string HexOf(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

FsBlobStore::FsBlobStore(std::string root) : root_(std::move(root)) {
  if (root_.empty()) throw std::runtime_error("blob store: empty directory name");
  // mkdir -p of the root itself (e.g. ./.data/files), then the fixed subdirectories.
  for (size_t pos = root_.find('/', 1); pos != std::string::npos; pos = root_.find('/', pos + 1)) {
    MakeDir(root_.substr(0, pos));
  }
  MakeDir(root_);
  MakeDir(root_ + "/partial");
  MakeDir(root_ + "/tmp");
  MakeDir(root_ + "/content");
  if (::access(root_.c_str(), W_OK) != 0) Fail("cannot write to", root_);
}

std::string FsBlobStore::ContentPath(const std::string& sha256) const {
  const std::string hex = HexOf(sha256);
  return root_ + "/content/" + hex.substr(0, 2) + "/" + hex.substr(2, 2) + "/" + hex;
}

std::string FsBlobStore::PartialPath(const std::string& upload) const {
  return root_ + "/partial/" + upload;
}

void FsBlobStore::CreatePartial(const std::string& upload) {
  const std::string path = PartialPath(upload);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
  if (!fd.ok()) Fail("cannot create", path);
}

void FsBlobStore::WritePartial(const std::string& upload, uint64_t offset, std::string_view data) {
  const std::string path = PartialPath(upload);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
  if (!fd.ok()) Fail("cannot open", path);
  const char* p = data.data();
  size_t n = data.size();
  off_t at = static_cast<off_t>(offset);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd.get(), p, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      Fail("cannot write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
  if (::fdatasync(fd.get()) != 0) Fail("cannot sync", path);
}

uint64_t FsBlobStore::PartialSize(const std::string& upload) {
  struct stat st;
  if (::stat(PartialPath(upload).c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

void FsBlobStore::RemovePartial(const std::string& upload) {
  const std::string path = PartialPath(upload);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) Fail("cannot remove", path);
}

FinishResult FsBlobStore::Finish(const std::string& upload, uint64_t size,
                                 const std::string& sha256) {
  FinishResult result;
  const std::string path = PartialPath(upload);
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.ok() && errno != ENOENT) Fail("cannot open", path);
  struct stat st {};
  if (in.ok() && ::fstat(in.get(), &st) != 0) Fail("cannot stat", path);
  if (static_cast<uint64_t>(st.st_size) != size || sha256.size() != crypto_hash_sha256_BYTES) {
    result.outcome = FinishResult::Outcome::kSizeMismatch;
    return result;
  }
  // The content is made from a copy of exactly the bytes hashed, never by renaming
  // the partial: a chunk that came in while we hashed (a client that did not wait)
  // could otherwise put other bytes under this sha256.
  const bool have = Exists(sha256);
  std::string tmp_path;
  int tmp_fd = -1;
  if (!have) {
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    tmp_path = root_ + "/tmp/" + upload + "." +
               HexOf(std::string_view(reinterpret_cast<const char*>(rnd), 8));
    tmp_fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (tmp_fd < 0) Fail("cannot create", tmp_path);
  }
  Fd tmp(tmp_fd);
  auto drop_tmp = [&] {
    if (!tmp_path.empty()) ::unlink(tmp_path.c_str());
  };
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::string buf(1 << 20, '\0');
  uint64_t done = 0;
  try {
    while (done < size) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
      const ssize_t r = ::pread(in.get(), buf.data(), want, static_cast<off_t>(done));
      if (r < 0) {
        if (errno == EINTR) continue;
        Fail("cannot read", path);
      }
      if (r == 0) break;  // shorter than it was a moment ago
      const auto n = static_cast<size_t>(r);
      crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buf.data()), n);
      if (tmp.ok()) WriteAll(tmp.get(), buf.data(), n, tmp_path);
      if (result.head.size() < kHeadBytes) {
        result.head.append(buf.data(), std::min(n, kHeadBytes - result.head.size()));
      }
      done += n;
    }
  } catch (...) {
    drop_tmp();
    throw;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  if (done != size) {
    drop_tmp();
    result.outcome = FinishResult::Outcome::kSizeMismatch;
    return result;
  }
  if (std::memcmp(digest, sha256.data(), sizeof digest) != 0) {
    drop_tmp();
    result.outcome = FinishResult::Outcome::kHashMismatch;
    return result;
  }
  if (!have) {
    if (::fdatasync(tmp.get()) != 0) {
      drop_tmp();
      Fail("cannot sync", tmp_path);
    }
    const std::string hex = HexOf(sha256);
    const std::string d1 = root_ + "/content/" + hex.substr(0, 2);
    const std::string d2 = d1 + "/" + hex.substr(2, 2);
    MakeDir(d1);
    MakeDir(d2);
    // Atomic: readers see no content or the whole of it. Two uploads of the same
    // bytes finishing at once both rename identical bytes; either wins.
    if (::rename(tmp_path.c_str(), ContentPath(sha256).c_str()) != 0) {
      drop_tmp();
      Fail("cannot rename into", d2);
    }
    SyncDir(d2);
    result.stored_new = true;
  }
  return result;
}

bool FsBlobStore::Exists(const std::string& sha256) {
  struct stat st;
  return ::stat(ContentPath(sha256).c_str(), &st) == 0;
}

std::string FsBlobStore::Read(const std::string& sha256, uint64_t offset, size_t length) {
  const std::string path = ContentPath(sha256);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) Fail("cannot open", path);
  std::string out(length, '\0');
  size_t got = 0;
  while (got < length) {
    const ssize_t r =
        ::pread(fd.get(), out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      Fail("cannot read", path);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

std::vector<std::string> FsBlobStore::PartialsOlderThan(int64_t before_ms) {
  return OlderThan(root_ + "/partial", before_ms);
}

size_t FsBlobStore::RemoveTmpOlderThan(int64_t before_ms) {
  size_t n = 0;
  for (const std::string& name : OlderThan(root_ + "/tmp", before_ms)) {
    if (::unlink((root_ + "/tmp/" + name).c_str()) == 0) ++n;
  }
  return n;
}

}  // namespace imbus::actors::file

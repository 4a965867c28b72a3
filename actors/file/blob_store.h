// Public. BlobStore: where the FILE service keeps bytes (docs/protocol.md 6.9). Two
// kinds of blob: a *partial*, the bytes of one open upload (named by its upload id,
// written at offsets), and a *content*, the finished bytes of one or more files
// (named by their sha256, written once, never changed). A content becomes visible
// only when Finish has checked its sha256: nothing half-written is ever served.
//
// FsBlobStore keeps them in a directory shared by every file actor (a volume):
//   ROOT/partial/<upload id>          one per open upload
//   ROOT/tmp/<upload id>.<random>     a content being made (Finish), then renamed
//   ROOT/content/ab/cd/<sha256 hex>   finished contents, fanned out by the hash
// Every method is thread-safe (no state beyond the root path): Finish runs on the
// offload pool while the workers go on using the same store.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imbus::actors::file {

// What Finish found.
struct FinishResult {
  enum class Outcome { kStored, kSizeMismatch, kHashMismatch };
  Outcome outcome = Outcome::kStored;
  bool stored_new = false;  // a new content was made (false: it was there already)
  std::string head;         // the content's first bytes (up to kHeadBytes), for image sizes
};

class BlobStore {
 public:
  static constexpr size_t kHeadBytes = 256 * 1024;

  virtual ~BlobStore() = default;

  // Makes an empty partial for `upload` unless there is one.
  virtual void CreatePartial(const std::string& upload) = 0;
  // Writes `data` at `offset` of the partial (made if missing); durable (fdatasync)
  // when it returns.
  virtual void WritePartial(const std::string& upload, uint64_t offset, std::string_view data) = 0;
  // The partial's size in bytes; 0 when there is none.
  virtual uint64_t PartialSize(const std::string& upload) = 0;
  virtual void RemovePartial(const std::string& upload) = 0;  // none: nothing happens
  // Reads the partial's bytes and checks they are exactly `size` bytes hashing to
  // `sha256` (32 bytes). On success the content `sha256` exists when it returns
  // (made from a copy of the bytes that were hashed, unless it existed already); the
  // partial stays (the caller removes it once the file is recorded). Long: hashes
  // the whole file.
  virtual FinishResult Finish(const std::string& upload, uint64_t size,
                              const std::string& sha256) = 0;
  virtual bool Exists(const std::string& sha256) = 0;
  // Up to `length` bytes of content `sha256` from `offset` (fewer at its end).
  virtual std::string Read(const std::string& sha256, uint64_t offset, size_t length) = 0;

  // Housekeeping (FileExpiry): the partials and leftover tmp files last written
  // before `before_ms` (wall clock, ms).
  virtual std::vector<std::string> PartialsOlderThan(int64_t before_ms) = 0;
  virtual size_t RemoveTmpOlderThan(int64_t before_ms) = 0;
};

class FsBlobStore : public BlobStore {
 public:
  // Makes ROOT and its subdirectories if missing; throws std::runtime_error when it
  // cannot.
  explicit FsBlobStore(std::string root);

  void CreatePartial(const std::string& upload) override;
  void WritePartial(const std::string& upload, uint64_t offset, std::string_view data) override;
  uint64_t PartialSize(const std::string& upload) override;
  void RemovePartial(const std::string& upload) override;
  FinishResult Finish(const std::string& upload, uint64_t size, const std::string& sha256) override;
  bool Exists(const std::string& sha256) override;
  std::string Read(const std::string& sha256, uint64_t offset, size_t length) override;
  std::vector<std::string> PartialsOlderThan(int64_t before_ms) override;
  size_t RemoveTmpOlderThan(int64_t before_ms) override;

  const std::string& root() const { return root_; }
  std::string ContentPath(const std::string& sha256) const;
  std::string PartialPath(const std::string& upload) const;

 private:
  std::string root_;
};

std::string HexOf(std::string_view bytes);

}  // namespace imbus::actors::file

// Helpers shared by the FILE service tests: file contents made from a seed, their
// sha256, a msgpack bin field, and counting the files a blob directory holds.
#pragma once

#include <dirent.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "codec/body.h"

namespace imbus::file_test {

inline std::string Sha256(std::string_view s) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

// `n` bytes of a xorshift sequence started from `seed`: different seeds, different
// contents; the same seed, the same bytes.
inline std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

inline void PutBin(codec::MapWriter& w, const char* key, std::string_view b) {
  w.Key(key);
  w.packer().pack_bin(static_cast<uint32_t>(b.size()));
  w.packer().pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

// Regular files under `dir`, recursively.
inline size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    const std::string path = dir + "/" + name;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) n += CountFiles(path);
    if (S_ISREG(st.st_mode)) ++n;
  }
  ::closedir(d);
  return n;
}

}  // namespace imbus::file_test

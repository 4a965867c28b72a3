#include "actors/auth/memory_auth_store.h"

#include <algorithm>
#include <cctype>

namespace imbus::actors {
namespace {
std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
}  // namespace

std::optional<uint64_t> MemoryAuthStore::CreateUser(const std::string& name,
                                                    const std::string& pwhash) {
  const std::string key = Lower(name);
  if (by_lower_name_.count(key) != 0) return std::nullopt;
  const uint64_t uid = next_uid_++;
  users_[uid] = User{UserRecord{uid, name, pwhash}, false};
  by_lower_name_[key] = uid;
  return uid;
}

std::optional<UserRecord> MemoryAuthStore::FindUserByName(const std::string& name) {
  auto it = by_lower_name_.find(Lower(name));
  if (it == by_lower_name_.end()) return std::nullopt;
  return users_.at(it->second).record;
}

std::optional<UserRecord> MemoryAuthStore::FindUserByUid(uint64_t uid) {
  auto it = users_.find(uid);
  if (it == users_.end() || it->second.deleted) return std::nullopt;
  return it->second.record;
}

bool MemoryAuthStore::DeleteUser(uint64_t uid) {
  auto it = users_.find(uid);
  if (it == users_.end() || it->second.deleted) return false;
  it->second.deleted = true;
  by_lower_name_.erase(Lower(it->second.record.name));
  std::erase_if(tokens_, [uid](const auto& kv) { return kv.second.uid == uid; });
  return true;
}

void MemoryAuthStore::SaveToken(const std::string& token_hash, const TokenRecord& token,
                                int64_t now_ms) {
  std::erase_if(tokens_, [&](const auto& kv) {
    return kv.second.uid == token.uid && kv.second.expires_at_ms <= now_ms;
  });
  tokens_[token_hash] = token;
}

std::optional<TokenRecord> MemoryAuthStore::FindToken(const std::string& token_hash) {
  auto it = tokens_.find(token_hash);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

void MemoryAuthStore::DeleteTokens(uint64_t uid, const std::string& device) {
  std::erase_if(tokens_, [&](const auto& kv) {
    return kv.second.uid == uid && kv.second.device == device;
  });
}

}  // namespace imbus::actors

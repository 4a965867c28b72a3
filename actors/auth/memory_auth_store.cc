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
  const UserRecord& user = users_.at(it->second).record;
  if (user.name != name) return std::nullopt;  // same letters, other case: not this name
  return user;
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
  failures_.erase(uid);
  return true;
}

void MemoryAuthStore::SaveToken(const std::string& token_hash, const TokenRecord& token,
                                int64_t now_ms, size_t max_devices) {
  std::erase_if(tokens_, [&](const auto& kv) {
    return kv.second.uid == token.uid &&
           (kv.second.expires_at_ms <= now_ms || kv.second.device == token.device);
  });
  tokens_[token_hash] = token;
  for (;;) {
    auto first = tokens_.end();
    size_t n = 0;
    for (auto it = tokens_.begin(); it != tokens_.end(); ++it) {
      if (it->second.uid != token.uid) continue;
      ++n;
      if (first == tokens_.end() || it->second.expires_at_ms < first->second.expires_at_ms) {
        first = it;
      }
    }
    if (n <= max_devices) return;
    tokens_.erase(first);
  }
}

std::optional<TokenRecord> MemoryAuthStore::FindToken(const std::string& token_hash) {
  auto it = tokens_.find(token_hash);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

void MemoryAuthStore::DeleteTokens(uint64_t uid, const std::string& device) {
  std::erase_if(tokens_,
                [&](const auto& kv) { return kv.second.uid == uid && kv.second.device == device; });
}

std::optional<FailureRecord> MemoryAuthStore::FindFailures(uint64_t uid) {
  auto it = failures_.find(uid);
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

bool MemoryAuthStore::ReserveAttempt(uint64_t uid, int64_t expected, int64_t next) {
  auto it = failures_.find(uid);
  if (it == failures_.end() || it->second.next_allowed_ms != expected) return false;
  it->second.next_allowed_ms = next;
  return true;
}

uint32_t MemoryAuthStore::AddFailure(uint64_t uid, int64_t now_ms, int64_t forget_before_ms) {
  FailureRecord& f = failures_[uid];
  if (f.failures > 0 && f.last_failure_ms <= forget_before_ms) f = FailureRecord{};
  ++f.failures;
  f.last_failure_ms = now_ms;
  return f.failures;
}

void MemoryAuthStore::DelayAttempts(uint64_t uid, int64_t next_ms) {
  auto it = failures_.find(uid);
  if (it == failures_.end()) return;
  it->second.next_allowed_ms = std::max(it->second.next_allowed_ms, next_ms);
}

void MemoryAuthStore::ClearFailures(uint64_t uid) { failures_.erase(uid); }

}  // namespace imbus::actors

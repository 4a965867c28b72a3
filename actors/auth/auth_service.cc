#include "actors/auth/auth_service.h"

#include <algorithm>
#include <memory>
#include <string_view>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/utf8.h"
#include "net/clock.h"

namespace imbus::actors {
namespace {

using codec::Code;

constexpr size_t kMaxName = 32;
constexpr size_t kMinPassword = 6;
constexpr size_t kMaxPassword = 128;
constexpr size_t kMaxDevice = 64;
constexpr size_t kMaxHost = 64;
constexpr size_t kMaxToken = 128;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Whether `name` could be a user's name at all (docs/protocol.md section 5).
bool IsPossibleName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxName &&
         std::all_of(name.begin(), name.end(), IsNameChar);
}

void CheckName(const std::string& name) {
  if (name.empty() || name.size() > kMaxName) {
    throw RequestError(Code::kBadRequest, "name must be 1-32 bytes");
  }
  if (!IsPossibleName(name)) {
    throw RequestError(Code::kBadRequest, "name may only contain [A-Za-z0-9_.-]");
  }
}

void CheckPasswordLength(const std::string& password) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    throw RequestError(Code::kBadRequest, "password must be 6-128 bytes");
  }
}

// A device name and local_host go into a column and into other clients' views, so
// they must be text: codec::IsValidUtf8 (the same rule as MSG text).
using codec::IsValidUtf8;

void CheckDevice(const std::string& device) {
  if (device.empty() || device.size() > kMaxDevice || !IsValidUtf8(device)) {
    throw RequestError(Code::kBadRequest, "device must be 1-64 bytes of UTF-8");
  }
}

std::string DeviceOf(const codec::Body& body) {
  std::string device = body.GetString("device").value_or(AuthService::kDefaultDevice);
  CheckDevice(device);
  return device;
}

}  // namespace

AuthService::AuthService(std::unique_ptr<AuthStore> store, Options options)
    : store_(std::move(store)),
      options_(std::move(options)),
      hasher_(options_.pwhash_ops, options_.pwhash_mem),
      dummy_hash_(hasher_.Hash("imbus-dummy-password")),
      backoff_(store_.get(), options_.account_backoff) {
  if (!options_.now_ms) options_.now_ms = net::WallNowMs;
  Handles(codec::auth::kRegister, &AuthService::Register);
  Handles(codec::auth::kLogin, &AuthService::Login);
  Handles(codec::auth::kResume, &AuthService::Resume);
  Handles(codec::auth::kLogout, &AuthService::Logout);
  Handles(codec::auth::kDeleteAccount, &AuthService::DeleteAccount);
}

void AuthService::Register(const Request& req, Reply* reply) {
  const std::string name = req.body.RequireString("name");
  const std::string password = req.body.RequireString("password");
  CheckName(name);
  CheckPasswordLength(password);
  // Cheap pre-check so a taken name does not cost a hash; the store decides races.
  if (store_->FindUserByName(name)) throw RequestError(Code::kConflict, "name is taken");
  auto hash = std::make_shared<std::string>();
  reply->offload.work = [hasher = hasher_, password, hash] { *hash = hasher.Hash(password); };
  reply->offload.then = [this, name, hash](const Request&, Reply* r) {
    const std::optional<uint64_t> uid = store_->CreateUser(name, *hash);
    if (!uid) throw RequestError(Code::kConflict, "name is taken");
    OkWriter w(1);
    w.Key("uid").Uint(*uid);
    r->body = w.Finish();
  };
}

void AuthService::OffloadCheckPassword(const std::optional<UserRecord>& user,
                                       const std::string& password, CheckedFn then,
                                       Reply* reply) const {
  auto ok = std::make_shared<bool>(false);
  reply->offload.work = [hasher = hasher_, hash = user ? user->pwhash : dummy_hash_,
                         known = user.has_value(), password,
                         ok] { *ok = hasher.Verify(hash, password) && known; };
  reply->offload.then = [ok, then = std::move(then)](const Request& req, Reply* r) {
    then(*ok, req, r);
  };
}

AuthService::SessionFields AuthService::ParseSessionFields(const codec::Body& body) {
  SessionFields f;
  const std::optional<uint64_t> p2p_port = body.GetUint("p2p_port");
  if (p2p_port && *p2p_port > 65535) {
    throw RequestError(Code::kBadRequest, "p2p_port must be 0-65535");
  }
  f.p2p_port = static_cast<uint16_t>(p2p_port.value_or(0));
  f.local_host = body.GetString("local_host").value_or("");
  if (f.local_host.size() > kMaxHost || !IsValidUtf8(f.local_host)) {
    throw RequestError(Code::kBadRequest, "local_host must be at most 64 bytes of UTF-8");
  }
  return f;
}

void AuthService::BindSession(const Request& req, const UserRecord& user, const std::string& device,
                              SessionFields fields, Reply* reply) const {
  reply->action = codec::SessionAction::kLogin;
  reply->session.uid = user.uid;
  reply->session.device = device;
  reply->session.name = user.name;
  reply->session.public_host = req.meta.peer_host;
  reply->session.public_port = req.meta.peer_port;
  reply->session.local_host = std::move(fields.local_host);
  reply->session.p2p_port = fields.p2p_port;
}

bool AuthService::RefuseIfBackingOff(const std::optional<UserRecord>& user,
                                     AccountBackoff::Admission* admission, Reply* reply) {
  if (!user) return false;
  *admission = backoff_.Admit(user->uid, options_.now_ms());
  if (admission->wait_ms == 0) return false;
  reply->body = codec::RateLimitedBody(admission->wait_ms,
                                       "too many failed password checks for this account; wait");
  return true;
}

void AuthService::Login(const Request& req, Reply* reply) {
  // Every field is checked before the store is read or a hash is spent.
  const std::string password = req.body.RequireString("password");
  const std::optional<uint64_t> uid = req.body.GetUint("uid");
  const std::optional<std::string> name = req.body.GetString("name");
  if (!uid && !name) throw RequestError(Code::kBadRequest, "field 'uid' or 'name' is required");
  CheckPasswordLength(password);
  const std::string device = DeviceOf(req.body);
  SessionFields fields = ParseSessionFields(req.body);
  // A name no account can have (non-ASCII, a space, too long) is a wrong name.
  if (name && !IsPossibleName(*name)) throw RequestError(Code::kUnauthenticated, kBadCredentials);

  std::optional<UserRecord> user =
      uid ? store_->FindUserByUid(*uid) : store_->FindUserByName(*name);
  // Both given: they must name the same user, exactly.
  if (user && uid && name && *name != user->name) user.reset();
  AccountBackoff::Admission admission;
  if (RefuseIfBackingOff(user, &admission, reply)) return;
  OffloadCheckPassword(
      user, password,
      [this, user, device, fields, admission](bool ok, const Request& request, Reply* r) {
        if (!ok) {
          if (user) backoff_.Failed(user->uid, options_.now_ms());
          throw RequestError(Code::kUnauthenticated, kBadCredentials);
        }
        backoff_.Succeeded(user->uid, admission);
        BindSession(request, *user, device, fields, r);
        const std::string token = NewToken();
        const int64_t now = options_.now_ms();
        store_->SaveToken(TokenHash(token),
                          TokenRecord{user->uid, device, now + options_.token_ttl_s * 1000}, now,
                          options_.max_devices);
        OkWriter w(3);
        w.Key("uid").Uint(user->uid);
        w.Key("name").Str(user->name);
        w.Key("token").Str(token);
        r->body = w.Finish();
      },
      reply);
}

void AuthService::Resume(const Request& req, Reply* reply) {
  const std::string token = req.body.RequireString("token");
  if (token.empty() || token.size() > kMaxToken) {
    throw RequestError(Code::kBadRequest, "token must be 1-128 bytes");
  }
  const std::optional<std::string> device = req.body.GetString("device");
  if (device) CheckDevice(*device);
  SessionFields fields = ParseSessionFields(req.body);
  const std::optional<TokenRecord> record = store_->FindToken(TokenHash(token));
  if (!record || record->expires_at_ms <= options_.now_ms() ||
      (device && *device != record->device)) {
    throw RequestError(Code::kUnauthenticated, kBadToken);
  }
  const std::optional<UserRecord> user = store_->FindUserByUid(record->uid);
  if (!user) throw RequestError(Code::kUnauthenticated, kBadToken);
  BindSession(req, *user, record->device, std::move(fields), reply);
  OkWriter w(2);
  w.Key("uid").Uint(user->uid);
  w.Key("name").Str(user->name);
  reply->body = w.Finish();
}

void AuthService::Logout(const Request& req, Reply* reply) {
  const std::string device = req.meta.device.empty() ? kDefaultDevice : req.meta.device;
  store_->DeleteTokens(req.meta.uid, device);
  reply->action = codec::SessionAction::kLogout;
}

void AuthService::DeleteAccount(const Request& req, Reply* reply) {
  const uint64_t uid = req.body.RequireUint("uid");
  const std::string password = req.body.RequireString("password");
  CheckPasswordLength(password);
  const std::optional<UserRecord> user = store_->FindUserByUid(uid);
  // Counted and limited like LOGIN: a right guess here deletes the account.
  AccountBackoff::Admission admission;
  if (RefuseIfBackingOff(user, &admission, reply)) return;
  OffloadCheckPassword(
      user, password,
      [this, uid, user, admission](bool ok, const Request& request, Reply* r) {
        if (!ok) {
          if (user) backoff_.Failed(uid, options_.now_ms());
          throw RequestError(Code::kUnauthenticated, kBadCredentials);
        }
        backoff_.Succeeded(uid, admission);
        // Gone meanwhile (deleted from another connection): the same answer.
        if (!store_->DeleteUser(uid)) throw RequestError(Code::kUnauthenticated, kBadCredentials);
        r->kick_uid = uid;
        r->kick_reason = "account deleted";
        if (request.meta.uid == uid) r->action = codec::SessionAction::kLogout;
      },
      reply);
}

}  // namespace imbus::actors

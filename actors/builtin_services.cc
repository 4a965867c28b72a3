// The services compiled into imbus-actor. To add one: implement actors::Service,
// add its tables as a new migration in db/schema.cc, and register it here.
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "actors/auth/auth_service.h"
#include "actors/auth/mariadb_auth_store.h"
#include "actors/directory/directory_service.h"
#include "actors/directory/mariadb_directory_store.h"
#include "actors/file/file_service.h"
#include "actors/msg/msg_service.h"
#include "actors/presence/presence_service.h"
#include "actors/push/push_delivery.h"
#include "actors/push/push_service.h"
#include "actors/service_registry.h"

namespace imbus::actors {

ServiceRegistry BuiltinServices() {
  ServiceRegistry r;
  r.Register("auth", codec::Service::kAuth, [](const ServiceContext& ctx) {
    AuthService::Options o;
    o.pwhash_ops = ctx.options.pwhash_ops;
    o.pwhash_mem = ctx.options.pwhash_mem;
    o.token_ttl_s = ctx.options.token_ttl_s;
    o.account_backoff.free_failures = ctx.options.login_free_failures;
    o.account_backoff.base_ms = ctx.options.login_backoff_ms;
    o.account_backoff.max_ms = ctx.options.login_backoff_max_ms;
    return std::make_unique<AuthService>(std::make_unique<MariaDbAuthStore>(ctx.db), o);
  });
  r.Register("directory", codec::Service::kDirectory, [](const ServiceContext& ctx) {
    DirectoryService::Options o;
    o.immediate_friends = ctx.options.immediate_friends;
    return std::make_unique<DirectoryService>(std::make_unique<MariaDbDirectoryStore>(ctx.db),
                                              ctx.sessions, o);
  });
  r.Register("presence", codec::Service::kPresence, [](const ServiceContext& ctx) {
    PresenceService::Options o;
    o.immediate_friends = ctx.options.immediate_friends;
    return std::make_unique<PresenceService>(std::make_unique<MariaDbDirectoryStore>(ctx.db),
                                             ctx.sessions, o);
  });
  r.Register("msg", codec::Service::kMsg, [](const ServiceContext& ctx) {
    msg::MsgService::Options o;
    o.sessions = ctx.sessions;
    o.recall_window_ms = ctx.options.recall_window_s * 1000;
    o.edit_window_ms = ctx.options.edit_window_s * 1000;
    return std::make_unique<msg::MsgService>(ctx.db, std::move(o));
  });
  // Device tokens and the preview setting on every worker; delivery (threads of its
  // own, once per process) only with a gateway URL.
  r.Register(
      "push", codec::Service::kPush,
      [](const ServiceContext& ctx) {
        return std::make_unique<push::PushService>(ctx.db, push::PushService::Options{});
      },
      [](const BackgroundContext& ctx) -> std::unique_ptr<BackgroundTask> {
        if (ctx.options.push_url.empty()) {
          spdlog::info("push: no --push-url: notifications stay in the outbox (delivery off)");
          return nullptr;
        }
        const std::string& url = ctx.options.push_url;
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
          throw std::runtime_error("--push-url must start with http:// or https://");
        }
        return std::make_unique<push::PushDelivery>(ctx.db, ctx.options);
      });
  // Files: every worker of a process shares one blob store (the --file-dir, shared
  // by every file actor); the expiry of open uploads runs once per process.
  r.Register(
      "file", codec::Service::kFile,
      [](const ServiceContext& ctx) {
        file::FileService::Options o;
        o.blobs = std::make_shared<file::FsBlobStore>(ctx.options.file_dir);
        o.max_size = ctx.options.file_max_size;
        o.quota = ctx.options.file_quota;
        o.chunk = ctx.options.file_chunk;
        return std::make_unique<file::FileService>(ctx.db, std::move(o));
      },
      [](const BackgroundContext& ctx) -> std::unique_ptr<BackgroundTask> {
        spdlog::info("file: storing in {} (largest file {} bytes, quota {} bytes per user)",
                     ctx.options.file_dir, ctx.options.file_max_size, ctx.options.file_quota);
        return std::make_unique<file::FileExpiry>(
            ctx.db, std::make_shared<file::FsBlobStore>(ctx.options.file_dir),
            ctx.options.file_upload_ttl_s * 1000);
      });
  return r;
}

}  // namespace imbus::actors

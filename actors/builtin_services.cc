// The services compiled into imbus-actor. To add one: implement actors::Service,
// add its tables as a new migration in db/schema.cc, and register it here.
#include "actors/auth/auth_service.h"
#include "actors/auth/mariadb_auth_store.h"
#include "actors/service_registry.h"

namespace imbus::actors {

ServiceRegistry BuiltinServices() {
  ServiceRegistry r;
  r.Register("auth", codec::Service::kAuth, [](const ServiceContext& ctx) {
    AuthService::Options o;
    o.pwhash_ops = ctx.options.pwhash_ops;
    o.pwhash_mem = ctx.options.pwhash_mem;
    o.token_ttl_s = ctx.options.token_ttl_s;
    return std::make_unique<AuthService>(std::make_unique<MariaDbAuthStore>(ctx.db), o);
  });
  return r;
}

}  // namespace imbus::actors

// Internal to edge/. TlsContext: the edge's server-side OpenSSL context (TLS 1.2 or
// newer, certificate chain and private key from PEM files), shared read-only by every
// EdgeLoop thread; each TLS connection gets its own SSL object from NewSession.
//
// Made once at startup by EdgeServer (throws on unreadable or mismatched files: a
// startup error); SSL_new on a shared SSL_CTX is thread-safe. Move-only.
#pragma once

#include <memory>
#include <string>

#include <openssl/ssl.h>

namespace imbus::edge {

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

class TlsContext {
 public:
  // Loads `cert_file` (PEM chain, leaf first) and `key_file` (PEM private key) and
  // checks that they belong together. Throws std::runtime_error with the file name
  // and OpenSSL's reason.
  static TlsContext Load(const std::string& cert_file, const std::string& key_file);

  TlsContext(TlsContext&&) = default;
  TlsContext& operator=(TlsContext&&) = default;

  // A server-side SSL on the connected non-blocking socket `fd` (not owned by it),
  // in accept state; the handshake runs as the loop drives it. nullptr on failure.
  SslPtr NewSession(int fd) const;

 private:
  struct CtxDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  };
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}

  std::unique_ptr<SSL_CTX, CtxDeleter> ctx_;
};

}  // namespace imbus::edge

#include "client/tls.h"
#include "net/tls_error.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace imbus::client {

namespace {

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::shared_ptr<const TlsClientContext> TlsClientContext::Create(const TlsConfig& config,
                                                                 std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = "TLS: " + net::TlsErrorText("SSL_CTX_new failed");
    return nullptr;
  }
  std::shared_ptr<const TlsClientContext> out(new TlsClientContext(ctx, config.verify));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (config.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int ok = config.ca_file.empty()
                       ? SSL_CTX_set_default_verify_paths(ctx)
                       : SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr);
    if (ok != 1) {
      *error =
          config.ca_file.empty()
              ? "cannot load the system CA store: " + net::TlsErrorText("unknown error")
              : "cannot read CA file '" + config.ca_file + "': " + net::TlsErrorText("unreadable");
      return nullptr;
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return out;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<TlsStream> TlsStream::Start(const TlsClientContext& ctx, int fd,
                                            const std::string& server_name, std::string* error) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) {
    *error = "TLS: " + net::TlsErrorText("SSL_new failed");
    return nullptr;
  }
  std::unique_ptr<TlsStream> stream(new TlsStream(ssl));
  bool ok = SSL_set_fd(ssl, fd) == 1;
  const bool ip = IsIpLiteral(server_name);
  if (ok && !ip && !server_name.empty()) {
    // SSL_set_tlsext_host_name without its C cast.
    ok = SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(server_name.c_str())) == 1;
  }
  if (ok && ctx.verify() && !server_name.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1;
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0) == 1;
    }
  }
  if (!ok) {
    *error = "TLS: cannot use server name '" + server_name + "': " + net::TlsErrorText("invalid");
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  return stream;
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

TlsStream::Io TlsStream::Status(int rc) {
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      return ERR_peek_error() == 0 && rc == 0 ? Io::kClosed : Io::kError;
    default:
      return Io::kError;
  }
}

TlsStream::Io TlsStream::Handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) return Io::kOk;
  const Io io = Status(rc);
  return io == Io::kClosed ? Io::kError : io;  // an EOF mid-handshake is a failure
}

TlsStream::Io TlsStream::Read(char* buf, size_t n, size_t* got) {
  ERR_clear_error();
  const int rc = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 30)));
  if (rc > 0) {
    *got = static_cast<size_t>(rc);
    return Io::kOk;
  }
  *got = 0;
  return Status(rc);
}

TlsStream::Io TlsStream::Write(const char* buf, size_t n, size_t* written) {
  ERR_clear_error();
  *written = 0;
  if (n == 0) return Io::kOk;
  const int rc = SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(n, 1 << 30)));
  if (rc > 0) {
    *written = static_cast<size_t>(rc);
    return Io::kOk;
  }
  return Status(rc);
}

std::string TlsStream::ErrorText() {
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  return net::TlsErrorText("connection closed during the TLS handshake (is it a TLS port?)");
}

std::string TlsStream::Description() const {
  return std::string(SSL_get_version(ssl_)) + " " +
         SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_));
}

}  // namespace imbus::client

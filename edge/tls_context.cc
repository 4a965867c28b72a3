#include "edge/tls_context.h"
#include "net/tls_error.h"

#include <openssl/err.h>

#include <stdexcept>

namespace imbus::edge {

TlsContext TlsContext::Load(const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) throw std::runtime_error("TLS: " + net::TlsErrorText("SSL_CTX_new failed"));
  TlsContext ctx(raw);
  // TLS 1.2+ only; no renegotiation (a client-driven CPU sink, and the reason an
  // SSL_write could want to read).
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // A client that leaves without close_notify is just a closed connection, as in TCP.
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Partial writes and a moving buffer let SSL_write behave like send(2) over the
  // connection's output buffer; idle connections give their TLS buffers back.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_num_tickets(raw, 0);  // no resumption: no ticket bytes after each handshake
  if (SSL_CTX_use_certificate_chain_file(raw, cert_file.c_str()) != 1) {
    throw std::runtime_error("--tls-cert '" + cert_file +
                             "': cannot load certificate: " + net::TlsErrorText("unreadable"));
  }
  if (SSL_CTX_use_PrivateKey_file(raw, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("--tls-key '" + key_file +
                             "': cannot load private key: " + net::TlsErrorText("unreadable"));
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    throw std::runtime_error("--tls-key '" + key_file + "' does not match --tls-cert '" +
                             cert_file + "': " + net::TlsErrorText("mismatch"));
  }
  return ctx;
}

SslPtr TlsContext::NewSession(int fd) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return nullptr;
  SSL_set_accept_state(ssl.get());
  return ssl;
}

}  // namespace imbus::edge

// Public. TLS for client connections to an edge's TLS listener (OpenSSL, TLS 1.2+):
// TlsClientContext holds the trust settings (CA file or the system store), TlsStream
// is one non-blocking client session on a connected socket. Used by Connection
// (blocking with poll) and by imbus-bench (its own epoll loop).
//
// A TlsClientContext is immutable once made and may be shared between connections
// of one thread (shared_ptr). A TlsStream belongs to its connection's thread and does
// not own the socket. Both move-only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct ssl_st;
struct ssl_ctx_st;

namespace imbus::client {

struct TlsConfig {
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system store
  bool verify = true;   // false: accept any certificate (benchmarks only; says so)
};

class TlsClientContext {
 public:
  // nullptr with *error ("cannot read CA file 'x': ...") on failure.
  static std::shared_ptr<const TlsClientContext> Create(const TlsConfig& config,
                                                        std::string* error);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  ssl_ctx_st* get() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  TlsClientContext(ssl_ctx_st* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  ssl_ctx_st* ctx_;
  bool verify_;
};

class TlsStream {
 public:
  // A client session on the connected socket `fd` (not owned). `server_name` is
  // sent as SNI (when a DNS name) and the certificate must match it: a DNS name is
  // checked against the SAN/CN (X509_VERIFY_PARAM_set1_host), an IP literal against
  // the SAN IP entries (set1_ip_asc). nullptr with *error on failure.
  static std::unique_ptr<TlsStream> Start(const TlsClientContext& ctx, int fd,
                                          const std::string& server_name, std::string* error);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  enum class Io { kOk, kWantRead, kWantWrite, kClosed, kError };
  // One handshake step: kOk when done, kWant* to retry when the socket is ready.
  Io Handshake();
  // Decrypted bytes into buf (*got > 0 on kOk); kClosed at the end of the stream.
  // Call until kWantRead: bytes may be buffered inside OpenSSL, invisible to poll.
  Io Read(char* buf, size_t n, size_t* got);
  // Like send(2): *written may be short; after kWant* offer the same bytes again.
  Io Write(const char* buf, size_t n, size_t* written);

  // Why the last kError happened: a failed certificate check ("certificate verify
  // failed: Hostname mismatch"), or OpenSSL's error queue. Clears the queue.
  std::string ErrorText();
  // "TLSv1.3 TLS_AES_256_GCM_SHA384".
  std::string Description() const;

 private:
  explicit TlsStream(ssl_st* ssl) : ssl_(ssl) {}
  Io Status(int rc);

  ssl_st* ssl_;
};

}  // namespace imbus::client

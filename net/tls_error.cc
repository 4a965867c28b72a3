#include "net/tls_error.h"

#include <openssl/err.h>

namespace imbus::net {

std::string TlsErrorText(const std::string& fallback) {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? fallback : text;
}

}  // namespace imbus::net

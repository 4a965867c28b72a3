// Public. The text of OpenSSL's thread-local error queue, drained ("a; b; c"), or
// `fallback` when it is empty. Shared by the edge's and the client's TLS code.
#pragma once

#include <string>

namespace imbus::net {

std::string TlsErrorText(const std::string& fallback);

}  // namespace imbus::net

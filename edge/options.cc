#include "edge/options.h"

#include <charconv>

namespace imbus::edge {

bool ParseHostPort(const std::string& text, std::string* host, uint16_t* port, std::string* error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    *error = "'" + text + "' is not HOST:PORT";
    return false;
  }
  unsigned value = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || value > 65535) {
    *error = "'" + text + "': port must be a number 0..65535";
    return false;
  }
  *host = text.substr(0, colon);
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace imbus::edge

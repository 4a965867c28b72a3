#include "actors/db/db_config.h"

#include <charconv>
#include <stdexcept>

namespace imbus::actors {

std::string DbEndpoint::ToString() const {
  if (!socket.empty()) return socket;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::vector<DbEndpoint> DbConfig::Endpoints() const {
  if (!hosts.empty()) return hosts;
  DbEndpoint one;
  one.socket = socket;
  one.host = host;
  one.port = port;
  return {one};
}

namespace {

DbEndpoint ParseOne(std::string_view item) {
  DbEndpoint e;
  if (item.empty()) throw std::invalid_argument("empty item");
  if (item.front() == '/') {
    e.socket = std::string(item);
    return e;
  }
  std::string_view host = item, port;
  if (item.front() == '[') {  // [v6]:port
    const size_t close = item.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument("'" + std::string(item) + "': no ']'");
    host = item.substr(1, close - 1);
    std::string_view rest = item.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        throw std::invalid_argument("'" + std::string(item) + "': ':port' expected after ']'");
      port = rest.substr(1);
    }
  } else if (const size_t colon = item.rfind(':'); colon != std::string_view::npos) {
    host = item.substr(0, colon);
    port = item.substr(colon + 1);
  }
  if (host.empty()) throw std::invalid_argument("'" + std::string(item) + "': no host");
  e.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      throw std::invalid_argument("'" + std::string(item) + "': bad port");
    }
    e.port = static_cast<uint16_t>(value);
  }
  return e;
}

}  // namespace

std::vector<DbEndpoint> ParseDbHosts(std::string_view list) {
  std::vector<DbEndpoint> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string_view::npos) comma = list.size();
    out.push_back(ParseOne(list.substr(at, comma - at)));
    at = comma + 1;
  }
  if (out.empty()) throw std::invalid_argument("no host given");
  return out;
}

}  // namespace imbus::actors

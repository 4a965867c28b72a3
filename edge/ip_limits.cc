#include "edge/ip_limits.h"

namespace imbus::edge {

IpLimits::IpLimits(uint32_t max_conns_per_ip, LoginBackoffOptions login)
    : max_conns_per_ip_(max_conns_per_ip), login_enabled_(login.base_ms > 0), login_(login) {}

bool IpLimits::AcquireConnection(const std::string& ip) {
  if (!conn_cap_enabled()) return true;
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t& n = open_[ip];
  if (n >= max_conns_per_ip_) return false;
  ++n;
  return true;
}

void IpLimits::ReleaseConnection(const std::string& ip) {
  if (!conn_cap_enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(ip);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

size_t IpLimits::open_connections(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(ip);
  return it == open_.end() ? 0 : it->second;
}

int64_t IpLimits::AdmitLogin(const std::string& ip, Clock::time_point now) {
  if (!login_enabled_) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  return login_.Admit(ip, now);
}

void IpLimits::LoginFailed(const std::string& ip, const std::string& target,
                           Clock::time_point now) {
  if (!login_enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  login_.Failed(ip, target, now);
}

void IpLimits::LoginSucceeded(const std::string& ip, const std::vector<std::string>& targets) {
  if (!login_enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  login_.Succeeded(ip, targets);
}

}  // namespace imbus::edge

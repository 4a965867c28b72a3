// Public, header-only. What /proc says about a process: its CPU time (utime +
// stime, all threads) in microseconds, for the benchmarks' CPU-per-message figures.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace imbus::net {

// utime+stime of `pid` in microseconds (at the kernel's clock-tick resolution), or
// -1 when there is no such process.
inline int64_t ProcessCpuUs(int pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return -1;
  // The command name (field 2) may hold spaces: fields are counted after its ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) return -1;
  return static_cast<int64_t>((utime + stime) * 1000000 / static_cast<uint64_t>(hz));
}

}  // namespace imbus::net

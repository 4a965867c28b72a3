// Internal to tests. A child process started from a built binary, with its stderr
// captured to a file so tests can wait for log lines ("listening on ...") and show
// the logs when something fails. Killed (SIGKILL) when the handle goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace imbus::testing {

class Process {
 public:
  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  // Starts `binary` with `args`; `env` entries are added to the environment.
  // Output (stdout and stderr) goes to a log file under $TMPDIR.
  static Process Start(const std::string& binary, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {});

  // Waits until the log contains a line with `needle` (after `from_offset`);
  // returns that line, or nullopt after `timeout` or when the process exited.
  std::optional<std::string> WaitForLog(const std::string& needle,
                                        std::chrono::milliseconds timeout,
                                        size_t from_offset = 0) const;
  std::string Log() const;
  size_t LogSize() const;

  bool Running();
  // "running", "exited with status N" or "killed by SIGSEGV": for failure reports.
  std::string State();
  // Waits for the process to exit on its own; its status (waitpid form), or nullopt
  // if it is still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // After Signal(SIGSTOP): waits until every thread of the process has stopped (the
  // signal is delivered asynchronously, a busy thread may run on for a moment).
  // False after `timeout`.
  bool WaitStopped(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`. Returns the exit status (waitpid form).
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  void Kill();  // SIGKILL and reap
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Port number parsed from the last "host:port" or "tcp://host:port" in `line`.
int PortFromLogLine(const std::string& line);

}  // namespace imbus::testing

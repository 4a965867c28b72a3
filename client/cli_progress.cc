#include "client/cli_progress.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "client/file_api.h"

namespace imbus::client::cli {

ProgressBar::ProgressBar(std::string label, bool quiet)
    : label_(std::move(label)), enabled_(!quiet && ::isatty(STDERR_FILENO) != 0) {
  start_ = Clock::now();
}

void ProgressBar::Restart(std::string label) {
  Finish();
  label_ = std::move(label);
  drawn_ = false;
  start_ = Clock::now();
  last_ = {};
}

void ProgressBar::Update(uint64_t done, uint64_t total) {
  done_ = done;
  total_ = total;
  if (!enabled_) return;
  const auto now = Clock::now();
  if (now - start_ < std::chrono::milliseconds(300)) return;  // a moment: no bar
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
  last_ = now;
  Draw(done, total);
}

void ProgressBar::Draw(uint64_t done, uint64_t total) {
  constexpr int kWidth = 24;
  const double frac = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  std::fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s/s  ", label_.c_str(), bar.c_str(),
               static_cast<int>(frac * 100), HumanSize(done).c_str(), HumanSize(total).c_str(),
               HumanSize(static_cast<uint64_t>(rate)).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  Draw(done_, total_);
  std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace imbus::client::cli

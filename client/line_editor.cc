#include "client/line_editor.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

// libedit's readline interface (pkg-config libedit: -I/usr/include/editline).
#include <readline.h>

namespace imbus::client::cli {

namespace {

LineEditor* g_editor = nullptr;  // libedit's callback has no user pointer
std::function<void(std::string)>* g_on_line = nullptr;
std::function<void()>* g_on_eof = nullptr;
bool g_line_done = false;

void LineHandler(char* line) {
  g_line_done = true;
  if (line == nullptr) {
    if (g_on_eof != nullptr) (*g_on_eof)();
    return;
  }
  std::string text(line);
  std::free(line);  // libedit hands over a strdup'ed copy
  if (!text.empty()) add_history(text.c_str());
  if (g_on_line != nullptr) (*g_on_line)(std::move(text));
}

}  // namespace

LineEditor::LineEditor(std::string prompt, std::function<void(std::string)> on_line,
                       std::function<void()> on_eof)
    : on_line_(std::move(on_line)), on_eof_(std::move(on_eof)), prompt_(std::move(prompt)) {
  if (g_editor != nullptr) throw std::logic_error("one LineEditor at a time");
  g_editor = this;
  g_on_line = &on_line_;
  g_on_eof = &on_eof_;
  rl_callback_handler_install(prompt_.c_str(), LineHandler);
}

LineEditor::~LineEditor() {
  rl_callback_handler_remove();
  g_editor = nullptr;
  g_on_line = nullptr;
  g_on_eof = nullptr;
  std::fputs("\n", stdout);
  std::fflush(stdout);
}

bool LineEditor::Usable() { return ::isatty(STDIN_FILENO) != 0 && ::isatty(STDOUT_FILENO) != 0; }

void LineEditor::OnReadable() {
  hidden_ = false;
  g_line_done = false;
  rl_callback_read_char();
  // After a finished line (and whatever its command printed) a fresh, empty prompt
  // on a line of its own: installing the handler again resets libedit's line and
  // draws it (in callback mode libedit would redraw the finished line).
  if (g_line_done) {
    std::fflush(stdout);
    rl_callback_handler_remove();
    rl_callback_handler_install(prompt_.c_str(), LineHandler);
  }
}

void LineEditor::Hide() {
  if (hidden_) return;
  hidden_ = true;
  // Back to the start of the line and erase it: the prompt and the typed text go;
  // libedit keeps the text and the cursor, and Redraw puts them back.
  std::fputs("\r\x1b[K", stdout);
  std::fflush(stdout);
}

void LineEditor::Redraw() {
  if (!hidden_) return;
  hidden_ = false;
  std::fflush(stdout);
  rl_forced_update_display();
  std::fflush(stdout);
}

void LineEditor::SetPrompt(const std::string& prompt) {
  if (prompt == prompt_) return;
  prompt_ = prompt;
  rl_set_prompt(prompt_.c_str());
}

std::string LineEditor::Typed() const {
  return rl_line_buffer != nullptr ? std::string(rl_line_buffer, static_cast<size_t>(rl_end))
                                   : std::string();
}

}  // namespace imbus::client::cli

// Internal to the `imbus` binary. LineEditor: libedit (Debian's libedit, through its
// readline interface in callback mode) for `imbus chat` on a terminal: line
// editing, history (up/down), and output printed above the line being typed
// without corrupting it. One per process (libedit's readline state is global);
// used from the chat's one thread.
#pragma once

#include <functional>
#include <string>

namespace imbus::client::cli {

class LineEditor {
 public:
  // `on_line` gets each finished line (without the newline); on end of input
  // (Ctrl-D on an empty line) `on_eof`.
  LineEditor(std::string prompt, std::function<void(std::string)> on_line,
             std::function<void()> on_eof);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // True when stdin and stdout are terminals (otherwise use plain lines).
  static bool Usable();

  // stdin is readable: feed libedit (calls on_line / on_eof when a line ends).
  void OnReadable();
  // Before printing asynchronous output: the prompt and the typed text are erased
  // from the screen. Idempotent until Redraw.
  void Hide();
  // After it: the prompt and the typed text (with the cursor where it was) are drawn
  // again below the output.
  void Redraw();
  void SetPrompt(const std::string& prompt);
  // The text typed so far on the current line.
  std::string Typed() const;

 private:
  std::function<void(std::string)> on_line_;
  std::function<void()> on_eof_;
  std::string prompt_;
  bool hidden_ = false;
};

}  // namespace imbus::client::cli

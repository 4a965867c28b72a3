// Public. Incremental frame decoder: bytes in as TCP delivers them (half frames,
// several frames at once), whole frames out. One per connection; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "codec/frame.h"

namespace imbus::codec {

class FrameDecoder {
 public:
  // Who is sending the bytes this decoder reads. A client may not set flags; a
  // server may set RESPONSE and PUSH.
  enum class Sender { kClient, kServer };
  enum class Status { kNeedMore, kFrame, kBroken };

  explicit FrameDecoder(Sender sender, uint32_t max_frame = kDefaultMaxFrame)
      : sender_(sender), max_frame_(max_frame) {}

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;
  FrameDecoder(FrameDecoder&&) = default;
  FrameDecoder& operator=(FrameDecoder&&) = default;

  // Appends received bytes. Cheap when called with a few bytes at a time.
  void Feed(const char* data, size_t n);

  // Takes the next whole frame out, if there is one. kBroken is final: the stream
  // is unusable and error() says why (for the SYS/ERROR answer). A broken header is
  // reported as soon as the bytes that prove it arrived, so a peer announcing a
  // huge length is refused at once, not after it has sent it.
  Status Next(Frame* out);

  const std::string& error() const { return error_; }
  // Bytes held that do not yet make a frame.
  size_t buffered() const { return buf_.size() - pos_; }
  // Releases buffer memory when nothing is buffered (idle connections stay small).
  void ShrinkIfEmpty();

 private:
  bool CheckPrefix();

  Sender sender_;
  uint32_t max_frame_;
  std::string buf_;
  size_t pos_ = 0;  // start of the unconsumed bytes in buf_
  bool broken_ = false;
  std::string error_;
};

}  // namespace imbus::codec

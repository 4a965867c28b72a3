#include "codec/frame_decoder.h"

#include <string>

namespace imbus::codec {

void FrameDecoder::Feed(const char* data, size_t n) {
  if (broken_) return;
  // Compact lazily: only when the consumed prefix dominates the buffer.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

void FrameDecoder::ShrinkIfEmpty() {
  if (pos_ == buf_.size()) {
    std::string().swap(buf_);
    pos_ = 0;
  }
}

// Checks whatever of the header has arrived so far; false (and broken) on a
// violation. Called before the header is whole so that a bad length is caught
// after its 4 bytes.
bool FrameDecoder::CheckPrefix() {
  const size_t have = buf_.size() - pos_;
  const char* p = buf_.data() + pos_;
  auto u8 = [p](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  if (have >= 4) {
    const uint32_t length = (u8(0) << 24) | (u8(1) << 16) | (u8(2) << 8) | u8(3);
    if (length < kHeaderSize) {
      error_ = "frame length " + std::to_string(length) + " is below the 16-byte header";
      return false;
    }
    if (length > max_frame_) {
      error_ = "frame length " + std::to_string(length) + " exceeds max_frame " +
               std::to_string(max_frame_);
      return false;
    }
  }
  if (have >= 6) {
    const uint32_t version = (u8(4) << 8) | u8(5);
    if (version != kProtocolVersion) {
      error_ = "unsupported protocol version " + std::to_string(version);
      return false;
    }
  }
  if (have >= 8) {
    const uint32_t flags = (u8(6) << 8) | u8(7);
    const uint32_t allowed = sender_ == Sender::kClient ? 0u : kKnownFlags;
    if ((flags & ~allowed) != 0) {
      error_ = sender_ == Sender::kClient ? "flags must be 0 in client frames"
                                          : "unknown flags " + std::to_string(flags);
      return false;
    }
  }
  return true;
}

FrameDecoder::Status FrameDecoder::Next(Frame* out) {
  if (broken_) return Status::kBroken;
  if (!CheckPrefix()) {
    broken_ = true;
    buf_.clear();
    pos_ = 0;
    return Status::kBroken;
  }
  const size_t have = buf_.size() - pos_;
  if (have < kHeaderSize) return Status::kNeedMore;
  const Header h = DecodeHeader(buf_.data() + pos_);
  if (have < h.length) return Status::kNeedMore;
  out->header = h;
  out->body.assign(buf_, pos_ + kHeaderSize, h.length - kHeaderSize);
  pos_ += h.length;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return Status::kFrame;
}

}  // namespace imbus::codec

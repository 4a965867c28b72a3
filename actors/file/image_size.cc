#include "actors/file/image_size.h"

namespace imbus::actors::file {
namespace {

uint32_t Byte(std::string_view s, size_t i) { return static_cast<unsigned char>(s[i]); }
uint32_t Be16(std::string_view s, size_t i) { return Byte(s, i) << 8 | Byte(s, i + 1); }
uint32_t Be32(std::string_view s, size_t i) { return Be16(s, i) << 16 | Be16(s, i + 2); }
uint32_t Le16(std::string_view s, size_t i) { return Byte(s, i) | Byte(s, i + 1) << 8; }

std::optional<Dimensions> Checked(uint32_t w, uint32_t h) {
  if (w == 0 || h == 0) return std::nullopt;
  return Dimensions{w, h};
}

// PNG: the signature, then the IHDR chunk (length 13) with width and height first.
std::optional<Dimensions> Png(std::string_view s) {
  if (s.size() < 24 || s.substr(12, 4) != "IHDR") return std::nullopt;
  return Checked(Be32(s, 16), Be32(s, 20));
}

// GIF: "GIF87a" / "GIF89a", then the logical screen's width and height.
std::optional<Dimensions> Gif(std::string_view s) {
  if (s.size() < 10) return std::nullopt;
  return Checked(Le16(s, 6), Le16(s, 8));
}

// JPEG: SOI, then segments (0xFF, marker, 2-byte length counting itself) up to the
// first start-of-frame (SOF0..SOF15 but DHT C4, JPG C8, DAC CC): precision, height,
// width.
std::optional<Dimensions> Jpeg(std::string_view s) {
  size_t i = 2;
  while (i + 1 < s.size()) {
    if (Byte(s, i) != 0xFF) return std::nullopt;
    const uint32_t marker = Byte(s, i + 1);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    i += 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // end, or scan before a frame
    if (i + 2 > s.size()) return std::nullopt;
    const uint32_t len = Be16(s, i);
    if (len < 2) return std::nullopt;
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (len < 7 || i + 7 > s.size()) return std::nullopt;
      return Checked(Be16(s, i + 5), Be16(s, i + 3));
    }
    i += len;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Dimensions> ImageSize(std::string_view head) {
  if (head.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return Png(head);
  if (head.substr(0, 6) == "GIF87a" || head.substr(0, 6) == "GIF89a") return Gif(head);
  if (head.size() >= 3 && Byte(head, 0) == 0xFF && Byte(head, 1) == 0xD8 && Byte(head, 2) == 0xFF) {
    return Jpeg(head);
  }
  return std::nullopt;
}

}  // namespace imbus::actors::file

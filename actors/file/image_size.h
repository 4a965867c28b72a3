// Public. ImageSize: the pixel size of a PNG, JPEG or GIF from the first bytes of
// the file (its header; for a JPEG, up to its first SOF segment). The FILE service
// records it as a file object's width and height (docs/protocol.md 6.9).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace imbus::actors::file {

struct Dimensions {
  uint32_t width = 0;
  uint32_t height = 0;
};

// nullopt when `head` is none of the three formats, is cut before the size, or says
// 0 by 0.
std::optional<Dimensions> ImageSize(std::string_view head);

}  // namespace imbus::actors::file

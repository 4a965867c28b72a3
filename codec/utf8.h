// Public. UTF-8 validation for client strings: MariaDB's utf8mb4 columns refuse
// anything else with an error (not a protocol code), and msgpack `str` values that
// the server passes on to other clients must decode in every client language.
#pragma once

#include <string_view>

namespace imbus::codec {

// Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
// U+0000 (a NUL byte) is valid UTF-8 and accepted.
bool IsValidUtf8(std::string_view text);

}  // namespace imbus::codec

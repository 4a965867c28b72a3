// Checks every vector of docs/test-vectors.json against the real codec, both ways:
// the frame decoder and Body::Parse read the hex as the header and body the file
// states, and MapWriter + EncodeFrame write the stated body back to the same bytes.
// So the vectors client writers test against can never drift from the server.
//
// The project has no JSON library; the small reader below handles what the file
// uses (objects with their key order kept, arrays, strings, integers, true, false,
// null) and fails the test on anything else.
#include <cstdint>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "codec/body.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"

#ifndef IMBUS_SOURCE_DIR
#error "IMBUS_SOURCE_DIR must be defined (test/codec/CMakeLists.txt)"
#endif

namespace imbus::codec {
namespace {

struct Json {
  enum class Type { kNull, kBool, kInt, kString, kArray, kObject } type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;  // the value when non-negative (may exceed int64)
  bool negative = false;
  std::string s;
  std::vector<Json> items;                           // array
  std::vector<std::pair<std::string, Json>> fields;  // object, in file order

  const Json* Get(const std::string& key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string text) : t_(std::move(text)) {}

  // False (and error()) when the text is not one JSON value of the supported kinds.
  bool Read(Json* out) {
    if (!Value(out)) return false;
    Space();
    if (p_ != t_.size()) return Fail("trailing characters");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& what) {
    error_ = what + " at offset " + std::to_string(p_);
    return false;
  }
  void Space() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t'))
      ++p_;
  }
  bool Literal(const char* word) {
    const std::string w(word);
    if (t_.compare(p_, w.size(), w) != 0) return Fail("bad literal");
    p_ += w.size();
    return true;
  }
  bool Value(Json* out) {
    Space();
    if (p_ >= t_.size()) return Fail("unexpected end");
    const char c = t_[p_];
    if (c == '{') return Object(out);
    if (c == '[') return Array(out);
    if (c == '"') {
      out->type = Json::Type::kString;
      return String(&out->s);
    }
    if (c == 't' || c == 'f') {
      out->type = Json::Type::kBool;
      out->b = c == 't';
      return Literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      out->type = Json::Type::kNull;
      return Literal("null");
    }
    return Number(out);
  }
  bool Number(Json* out) {
    out->type = Json::Type::kInt;
    if (t_[p_] == '-') {
      out->negative = true;
      ++p_;
    }
    const size_t start = p_;
    uint64_t v = 0;
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(t_[p_] - '0');
      ++p_;
    }
    if (p_ == start) return Fail("expected a value");
    if (p_ < t_.size() && (t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E')) {
      return Fail("only integers are supported");
    }
    out->u = v;
    out->i = out->negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  bool Hex4(uint32_t* cp) {
    if (p_ + 4 > t_.size()) return Fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[p_++];
      uint32_t d = 0;
      if (h >= '0' && h <= '9') {
        d = static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        d = static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        d = static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return Fail("bad \\u escape");
      }
      *cp = *cp * 16 + d;
    }
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool String(std::string* out) {
    ++p_;  // the opening quote
    while (p_ < t_.size() && t_[p_] != '"') {
      char c = t_[p_++];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (p_ >= t_.size()) return Fail("unfinished escape");
      c = t_[p_++];
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out->push_back(c);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
            uint32_t lo = 0;
            if (t_.compare(p_, 2, "\\u") != 0) return Fail("lone surrogate");
            p_ += 2;
            if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return Fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Fail("unknown escape");
      }
    }
    if (p_ >= t_.size()) return Fail("unfinished string");
    ++p_;
    return true;
  }
  bool Array(Json* out) {
    out->type = Json::Type::kArray;
    ++p_;
    Space();
    if (p_ < t_.size() && t_[p_] == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      out->items.emplace_back();
      if (!Value(&out->items.back())) return false;
      Space();
      if (p_ < t_.size() && t_[p_] == ',') {
        ++p_;
        continue;
      }
      if (p_ < t_.size() && t_[p_] == ']') {
        ++p_;
        return true;
      }
      return Fail("expected , or ]");
    }
  }
  bool Object(Json* out) {
    out->type = Json::Type::kObject;
    ++p_;
    Space();
    if (p_ < t_.size() && t_[p_] == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      Space();
      if (p_ >= t_.size() || t_[p_] != '"') return Fail("expected a key");
      std::string key;
      if (!String(&key)) return false;
      Space();
      if (p_ >= t_.size() || t_[p_] != ':') return Fail("expected :");
      ++p_;
      out->fields.emplace_back(std::move(key), Json{});
      if (!Value(&out->fields.back().second)) return false;
      Space();
      if (p_ < t_.size() && t_[p_] == ',') {
        ++p_;
        continue;
      }
      if (p_ < t_.size() && t_[p_] == '}') {
        ++p_;
        return true;
      }
      return Fail("expected , or }");
    }
  }

  std::string t_;
  size_t p_ = 0;
  std::string error_;
};

std::string FromHex(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  if (hex.size() % 2 != 0) return "<odd hex>";
  for (size_t k = 0; k < hex.size(); k += 2) {
    const int hi = nibble(hex[k]);
    const int lo = nibble(hex[k + 1]);
    if (hi < 0 || lo < 0) return "<bad hex>";
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kDigits[u >> 4]);
    out.push_back(kDigits[u & 0xF]);
  }
  return out;
}

// Packs a nested JSON value the way the server's writers do (MapWriter's packer:
// the smallest msgpack encoding of every integer and string).
void PackValue(const Json& v, MapWriter& w) {
  switch (v.type) {
    case Json::Type::kNull:
      w.packer().pack_nil();
      return;
    case Json::Type::kBool:
      w.Bool(v.b);
      return;
    case Json::Type::kInt:
      if (v.negative) {
        w.Int(v.i);
      } else {
        w.Uint(v.u);
      }
      return;
    case Json::Type::kString:
      w.Str(v.s);
      return;
    case Json::Type::kArray:
      w.packer().pack_array(static_cast<uint32_t>(v.items.size()));
      for (const Json& item : v.items) PackValue(item, w);
      return;
    case Json::Type::kObject:
      w.packer().pack_map(static_cast<uint32_t>(v.fields.size()));
      for (const auto& [k, item] : v.fields) {
        w.Key(k);
        PackValue(item, w);
      }
      return;
  }
}

// A body as the server writes one: MapWriter with the top-level fields in order.
std::string EncodeBody(const Json& body) {
  MapWriter w(static_cast<uint32_t>(body.fields.size()));
  for (const auto& [k, v] : body.fields) {
    w.Key(k);
    PackValue(v, w);
  }
  return w.Finish();
}

uint64_t HeaderField(const Json& header, const std::string& key) {
  const Json* v = header.Get(key);
  EXPECT_TRUE(v != nullptr && v->type == Json::Type::kInt && !v->negative)
      << "header field '" << key << "' missing or not a non-negative integer";
  return v != nullptr ? v->u : 0;
}

class TestVectors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = std::string(IMBUS_SOURCE_DIR) + "/docs/test-vectors.json";
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot open " << path;
    std::stringstream ss;
    ss << in.rdbuf();
    root_ = std::make_unique<Json>();
    JsonReader reader(ss.str());
    ASSERT_TRUE(reader.Read(root_.get())) << path << ": " << reader.error();
  }
  static void TearDownTestSuite() { root_.reset(); }

  static const std::vector<Json>& Vectors() {
    static const std::vector<Json> kNone;
    if (root_ == nullptr) return kNone;
    const Json* v = root_->Get("vectors");
    return v != nullptr && v->type == Json::Type::kArray ? v->items : kNone;
  }

  static std::unique_ptr<Json> root_;
};
std::unique_ptr<Json> TestVectors::root_;

std::string StringField(const Json& v, const std::string& key) {
  const Json* f = v.Get(key);
  return f != nullptr && f->type == Json::Type::kString ? f->s : std::string();
}

TEST_F(TestVectors, FileHasNamedUniqueVectors) {
  ASSERT_GE(Vectors().size(), 20u);
  std::set<std::string> names;
  for (const Json& v : Vectors()) {
    const std::string name = StringField(v, "name");
    EXPECT_FALSE(name.empty());
    EXPECT_FALSE(StringField(v, "description").empty()) << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate vector name " << name;
    const std::string expect = StringField(v, "expect");
    EXPECT_TRUE(expect == "frame" || expect == "broken" || expect == "bad_body") << name;
  }
}

TEST_F(TestVectors, FramesDecodeToTheStatedHeaderAndBody) {
  for (const Json& v : Vectors()) {
    if (StringField(v, "expect") != "frame") continue;
    const std::string name = StringField(v, "name");
    SCOPED_TRACE(name);
    const std::string bytes = FromHex(StringField(v, "hex"));
    const Json* header = v.Get("header");
    const Json* body = v.Get("body");
    ASSERT_TRUE(header != nullptr && body != nullptr && body->type == Json::Type::kObject);
    const auto sender = StringField(v, "direction") == "client_to_server"
                            ? FrameDecoder::Sender::kClient
                            : FrameDecoder::Sender::kServer;
    // All at once, then one byte at a time: the same single frame either way.
    for (const bool bytewise : {false, true}) {
      FrameDecoder decoder(sender);
      Frame frame;
      if (bytewise) {
        for (size_t k = 0; k + 1 < bytes.size(); ++k) {
          decoder.Feed(&bytes[k], 1);
          ASSERT_EQ(decoder.Next(&frame), FrameDecoder::Status::kNeedMore) << "byte " << k;
        }
        decoder.Feed(&bytes[bytes.size() - 1], 1);
      } else {
        decoder.Feed(bytes.data(), bytes.size());
      }
      ASSERT_EQ(decoder.Next(&frame), FrameDecoder::Status::kFrame) << decoder.error();
      EXPECT_EQ(decoder.buffered(), 0u);
      EXPECT_EQ(frame.header.length, HeaderField(*header, "length"));
      EXPECT_EQ(frame.header.length, bytes.size());
      EXPECT_EQ(frame.header.version, HeaderField(*header, "version"));
      EXPECT_EQ(frame.header.flags, HeaderField(*header, "flags"));
      EXPECT_EQ(frame.header.service, HeaderField(*header, "service"));
      EXPECT_EQ(frame.header.command, HeaderField(*header, "command"));
      EXPECT_EQ(frame.header.seq, HeaderField(*header, "seq"));
      Body parsed;
      std::string error;
      ASSERT_TRUE(Body::Parse(frame.body, &parsed, &error)) << error;
      // The decoded value equals the stated one, key order included.
      const std::string stated = EncodeBody(*body);
      const msgpack::object_handle expected = msgpack::unpack(stated.data(), stated.size());
      EXPECT_TRUE(parsed.root() == expected.get());
    }
  }
}

TEST_F(TestVectors, FramesEncodeToTheStatedBytes) {
  for (const Json& v : Vectors()) {
    if (StringField(v, "expect") != "frame") continue;
    const std::string name = StringField(v, "name");
    SCOPED_TRACE(name);
    const Json* header = v.Get("header");
    const Json* body = v.Get("body");
    ASSERT_TRUE(header != nullptr && body != nullptr);
    const std::string encoded =
        EncodeFrame(static_cast<uint16_t>(HeaderField(*header, "flags")),
                    static_cast<uint16_t>(HeaderField(*header, "service")),
                    static_cast<uint16_t>(HeaderField(*header, "command")),
                    static_cast<uint32_t>(HeaderField(*header, "seq")), EncodeBody(*body));
    EXPECT_EQ(ToHex(encoded), StringField(v, "hex"));
  }
}

TEST_F(TestVectors, BrokenStreamsAreRefusedByTheDecoder) {
  size_t seen = 0;
  for (const Json& v : Vectors()) {
    if (StringField(v, "expect") != "broken") continue;
    ++seen;
    SCOPED_TRACE(StringField(v, "name"));
    const std::string bytes = FromHex(StringField(v, "hex"));
    FrameDecoder decoder(FrameDecoder::Sender::kClient);
    decoder.Feed(bytes.data(), bytes.size());
    Frame frame;
    EXPECT_EQ(decoder.Next(&frame), FrameDecoder::Status::kBroken);
    EXPECT_FALSE(decoder.error().empty());
  }
  EXPECT_GT(seen, 0u);
}

TEST_F(TestVectors, BadBodiesAreWholeFramesThatDoNotParse) {
  size_t seen = 0;
  for (const Json& v : Vectors()) {
    if (StringField(v, "expect") != "bad_body") continue;
    ++seen;
    SCOPED_TRACE(StringField(v, "name"));
    const std::string bytes = FromHex(StringField(v, "hex"));
    FrameDecoder decoder(FrameDecoder::Sender::kClient);
    decoder.Feed(bytes.data(), bytes.size());
    Frame frame;
    ASSERT_EQ(decoder.Next(&frame), FrameDecoder::Status::kFrame) << decoder.error();
    Body parsed;
    std::string error;
    EXPECT_FALSE(Body::Parse(frame.body, &parsed, &error));
    EXPECT_FALSE(error.empty());
  }
  EXPECT_GT(seen, 0u);
}

}  // namespace
}  // namespace imbus::codec

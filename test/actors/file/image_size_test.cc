// ImageSize on real images: PNG and GIF written by python3 (zlib, hand-packed LZW),
// JPEG (baseline and progressive) by cjpeg from a PPM; and what is not an image.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "actors/file/image_size.h"

namespace imbus::actors::file {
namespace {

class ImageSizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imbus-image-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

  // A w x h image in each format, in dir_.
  void Python(const std::string& kind, int w, int h, const std::string& out) {
    const char* script = R"PY(
import struct, sys, zlib
kind, w, h, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == 'png':
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    raw = b''.join(b'\x00' + bytes((x * 7 + y) % 256 for x in range(w * 3)) for y in range(h))
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
elif kind == 'gif':
    # 2-colour palette; LZW with min code size 2 and a clear code before every pixel,
    # so no table entry is ever added and every code stays 3 bits.
    codes = []
    for i in range(w * h):
        codes += [4, (i // 3) % 2]
    codes.append(5)
    bits, nbits, stream = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += 3
        while nbits >= 8:
            stream.append(bits & 255); bits >>= 8; nbits -= 8
    if nbits:
        stream.append(bits & 255)
    blocks = b''.join(bytes([len(stream[i:i + 255])]) + bytes(stream[i:i + 255])
                      for i in range(0, len(stream), 255)) + b'\x00'
    data = (b'GIF89a' + struct.pack('<HHBBB', w, h, 0x80, 0, 0) + b'\x00\x00\x00\xff\xff\xff'
            + b',' + struct.pack('<HHHHB', 0, 0, w, h, 0) + b'\x02' + blocks + b';')
else:  # ppm, for cjpeg
    data = b'P6 %d %d 255\n' % (w, h) + bytes((i * 13) % 256 for i in range(w * h * 3))
open(out, 'wb').write(data)
)PY";
    std::ofstream(dir_ + "/make.py") << script;
    Run("/usr/bin/python3 " + dir_ + "/make.py " + kind + " " + std::to_string(w) + " " +
        std::to_string(h) + " " + dir_ + "/" + out);
  }

  std::string dir_;
};

void ExpectSize(const std::string& bytes, uint32_t w, uint32_t h) {
  std::optional<Dimensions> d = ImageSize(bytes);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->width, w);
  EXPECT_EQ(d->height, h);
}

TEST_F(ImageSizeTest, Png) {
  Python("png", 37, 19, "a.png");
  ExpectSize(Read("a.png"), 37, 19);
  Python("png", 1, 4000, "b.png");
  ExpectSize(Read("b.png"), 1, 4000);
}

TEST_F(ImageSizeTest, Gif) {
  Python("gif", 300, 2, "a.gif");  // a width over 255: both bytes of the LE16 count
  ExpectSize(Read("a.gif"), 300, 2);
}

TEST_F(ImageSizeTest, JpegBaselineAndProgressive) {
  Python("ppm", 640, 33, "a.ppm");
  Run("cjpeg -quality 80 -outfile " + dir_ + "/a.jpg " + dir_ + "/a.ppm");
  const std::string baseline = Read("a.jpg");
  ExpectSize(baseline, 640, 33);
  Python("ppm", 17, 1000, "b.ppm");
  Run("cjpeg -progressive -optimize -outfile " + dir_ + "/b.jpg " + dir_ + "/b.ppm");
  ExpectSize(Read("b.jpg"), 17, 1000);
  // Cut before the frame header: no size, no crash.
  size_t sof = baseline.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  EXPECT_FALSE(ImageSize(baseline.substr(0, sof + 5)).has_value());
}

TEST_F(ImageSizeTest, NotImages) {
  EXPECT_FALSE(ImageSize("").has_value());
  EXPECT_FALSE(ImageSize("hello, world").has_value());
  EXPECT_FALSE(ImageSize(std::string("\x89PNG\r\n\x1a\n", 8)).has_value());
  EXPECT_FALSE(ImageSize("GIF89a").has_value());
  EXPECT_FALSE(ImageSize(std::string("\xff\xd8\xff\xd9", 4)).has_value());
  // 0 x 0 is no size.
  EXPECT_FALSE(ImageSize(std::string("GIF89a\0\0\0\0", 10)).has_value());
}

}  // namespace
}  // namespace imbus::actors::file

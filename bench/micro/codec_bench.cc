// Codec hot paths: frame encode/decode, the incremental decoder on split input,
// and Body::Parse of the bodies every client sends (LOGIN, MSG/SEND).
#include <benchmark/benchmark.h>

#include <string>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/frame.h"
#include "codec/frame_decoder.h"

namespace {

using imbus::codec::Body;
using imbus::codec::FrameDecoder;
using imbus::codec::MapWriter;

std::string LoginBody() {
  MapWriter w(3);
  w.Key("name")
      .Str("alice_1234")
      .Key("password")
      .Str("correct horse battery")
      .Key("device")
      .Str("phone");
  return w.Finish();
}

std::string SendBody() {
  MapWriter w(3);
  w.Key("to").Uint(123456).Key("cmid").Str("0f3a9c12-48213").Key("text").Str(std::string(64, 'x'));
  return w.Finish();
}

void BM_EncodeFrame(benchmark::State& state) {
  const std::string body = SendBody();
  std::string out;
  for (auto _ : state) {
    out.clear();
    imbus::codec::AppendFrame(&out, 0, 5, 1, 42, body);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (body.size() + 16)));
}
BENCHMARK(BM_EncodeFrame);

void BM_DecodeHeader(benchmark::State& state) {
  const std::string frame = imbus::codec::EncodeFrame(0, 5, 1, 42, SendBody());
  for (auto _ : state) benchmark::DoNotOptimize(imbus::codec::DecodeHeader(frame.data()));
}
BENCHMARK(BM_DecodeHeader);

// Frames fed to a FrameDecoder in chunks of state.range(0) bytes (0: whole batches
// of 64 frames at once, as a busy socket delivers them).
void BM_FrameDecoder(benchmark::State& state) {
  const size_t chunk = static_cast<size_t>(state.range(0));
  std::string stream;
  for (int i = 0; i < 64; ++i)
    imbus::codec::AppendFrame(&stream, 0, 5, 1, static_cast<uint32_t>(i + 1), SendBody());
  imbus::codec::Frame frame;
  for (auto _ : state) {
    FrameDecoder d(FrameDecoder::Sender::kClient);
    size_t frames = 0;
    const size_t step = chunk == 0 ? stream.size() : chunk;
    for (size_t off = 0; off < stream.size(); off += step) {
      d.Feed(stream.data() + off, std::min(step, stream.size() - off));
      while (d.Next(&frame) == FrameDecoder::Status::kFrame) ++frames;
    }
    if (frames != 64) state.SkipWithError("decoder lost frames");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 64));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_FrameDecoder)->Arg(0)->Arg(1)->Arg(7)->Arg(1500);

void BM_BodyParse(benchmark::State& state, std::string body) {
  std::string error;
  for (auto _ : state) {
    Body b;
    if (!Body::Parse(body, &b, &error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(b.GetString("password"));
  }
}
BENCHMARK_CAPTURE(BM_BodyParse, login, LoginBody());
BENCHMARK_CAPTURE(BM_BodyParse, msg_send, SendBody());

void BM_BodyWrite(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(SendBody());
}
BENCHMARK(BM_BodyWrite);

}  // namespace

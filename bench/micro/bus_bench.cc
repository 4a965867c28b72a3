// Bus envelopes: PackMeta / UnpackMeta of the RequestMeta every request carries.
#include <benchmark/benchmark.h>

#include "codec/bus.h"

namespace {

imbus::codec::RequestMeta Meta() {
  imbus::codec::RequestMeta m;
  m.rid = 987654321;
  m.conn = 123456;
  m.seq = 77;
  m.service = 5;
  m.command = 1;
  m.uid = 4242;
  m.device = "phone";
  m.peer_host = "203.0.113.17";
  m.peer_port = 51234;
  return m;
}

void BM_PackRequestMeta(benchmark::State& state) {
  const auto m = Meta();
  for (auto _ : state) benchmark::DoNotOptimize(imbus::codec::PackMeta(m));
}
BENCHMARK(BM_PackRequestMeta);

void BM_UnpackRequestMeta(benchmark::State& state) {
  const std::string packed = imbus::codec::PackMeta(Meta());
  imbus::codec::RequestMeta out;
  for (auto _ : state) {
    if (!imbus::codec::UnpackMeta(packed, &out)) state.SkipWithError("unpack failed");
    benchmark::DoNotOptimize(out.uid);
  }
}
BENCHMARK(BM_UnpackRequestMeta);

}  // namespace

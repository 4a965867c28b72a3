// Password hashing (Argon2id via libsodium) at the bench deployment's lowest cost
// and at libsodium's interactive cost (the production default): the dominant cost
// of REGISTER and LOGIN.
#include <benchmark/benchmark.h>

#include "actors/auth/password_hasher.h"

namespace {

void BM_PasswordHash(benchmark::State& state) {
  imbus::actors::EnsureSodium();
  const imbus::actors::PasswordHasher h(static_cast<uint64_t>(state.range(0)),
                                        static_cast<size_t>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(h.Hash("correct horse battery"));
}
// (ops, mem): lowest (1, 8 KiB); 0, 0 = interactive default (2, 64 MiB).
BENCHMARK(BM_PasswordHash)->Args({1, 8192})->Args({0, 0})->Unit(benchmark::kMillisecond);

void BM_PasswordVerify(benchmark::State& state) {
  imbus::actors::EnsureSodium();
  const imbus::actors::PasswordHasher h(static_cast<uint64_t>(state.range(0)),
                                        static_cast<size_t>(state.range(1)));
  const std::string stored = h.Hash("correct horse battery");
  for (auto _ : state) {
    if (!h.Verify(stored, "correct horse battery")) state.SkipWithError("verify failed");
  }
}
BENCHMARK(BM_PasswordVerify)->Args({1, 8192})->Args({0, 0})->Unit(benchmark::kMillisecond);

}  // namespace

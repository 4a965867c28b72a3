// Asking a broker for its STATS from outside the bus (control tools, tests,
// container health checks). See docs/bus.md, "STATS".
#pragma once

#include <chrono>
#include <string>

#include "bus/curve.h"
#include "codec/bus.h"

namespace imbus::bus {

// Connects a throwaway DEALER to `endpoint`, sends STATS and waits up to
// `timeout` for the answer. Returns false (with `error` set) when none came. With
// CURVE on, `curve` must hold a key pair the broker allows (a refused one looks
// like no answer).
bool QueryStats(const std::string& endpoint, std::chrono::milliseconds timeout,
                codec::StatsMeta* out, std::string* error, const CurveClientKeys* curve = nullptr);

// The answer as a human-readable table, one line per edge and per worker.
std::string FormatStats(const codec::StatsMeta& stats);

}  // namespace imbus::bus

// Asking a broker for its STATS, or giving it an ADMIN command, from outside the
// bus (imbus-ctl, tests, container health checks). See docs/bus.md, "STATS".
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

// Sends one ADMIN command (imbus-ctl) and waits up to `timeout` for the broker's
// answer, whose code may still refuse it. False (with `error`) when none came, or
// the broker is the passive one of a pair.
bool AdminCall(const std::string& endpoint, std::chrono::milliseconds timeout,
               const codec::AdminMeta& request, codec::AdminReplyMeta* out, std::string* error,
               const CurveClientKeys* curve = nullptr);

// The answer as a human-readable table, one line per edge and per worker.
std::string FormatStats(const codec::StatsMeta& stats);

}  // namespace imbus::bus

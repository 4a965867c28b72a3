// Public. ActorHost: the imbus-actor process minus flag parsing. Startup checks the
// services, starts libsodium, waits for MariaDB (creating the database and applying
// the schema), then runs `threads` workers. Each worker thread owns a BusPeer (a
// DEALER to the broker), its own Db connection and its own service instances, and
// loops: wait for input (≤ heartbeat) -> dispatch every REQUEST -> send pushes and
// the reply -> heartbeat tick. Work that takes long (password hashing) goes to one
// OffloadPool of `hash_threads` shared by the workers, so no worker stays away from
// its socket for long; while such work is out the worker also wakes every few ms
// to send what finished, on its own socket.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "actors/db/db_config.h"
#include "actors/service.h"
#include "actors/service_registry.h"
#include "bus/curve.h"

namespace imbus::actors {

class ActorHost {
 public:
  struct Options {
    std::vector<std::string> services;  // names in the registry: "auth", ...
    std::string broker = "tcp://127.0.0.1:5555";
    int threads = 2;
    int heartbeat_ms = 1000;
    // The OffloadPool: threads, and jobs that may wait (more: RATE_LIMITED).
    int hash_threads = 2;
    int hash_queue = 256;
    DbConfig db;
    int db_wait_s = 60;  // keep retrying the first connection this long
    ServiceOptions service_options;
    bus::CurveClientKeys curve;  // to the broker; empty: CURVE off
  };

  ActorHost(Options options, ServiceRegistry registry);

  // Startup; throws std::runtime_error with a message fit for the user (exit 2).
  void Start();
  // Builds every worker's Db and services (throws std::runtime_error like Start),
  // then runs the workers until `stop` becomes true (checked every heartbeat).
  void Run(const std::atomic<bool>& stop);

 private:
  struct Worker;
  void WorkerLoop(zmq::context_t& ctx, Worker* w, const std::atomic<bool>& stop);
  void NoteExpired(Worker& w);

  Options options_;
  ServiceRegistry registry_;
};

}  // namespace imbus::actors

// Internal to the broker. BinaryStar: the state machine of a primary/backup broker
// pair (the ZeroMQ guide's Binary Star pattern). Each broker publishes its state to
// the other every interval; the one that is ACTIVE serves edges and workers, the
// PASSIVE one answers them NOT_ACTIVE so they try the other.
//
// The split-brain rule: a passive broker takes over only when it has not heard its
// peer for `peer_timeout` *and* a client (an edge or a worker) has come to it. A
// broker cut off from its peer while the clients still reach the active one never
// becomes active, because no client comes. Pure: no sockets, no clock of its own.
// Not thread-safe: owned by the broker loop. Copyable (a value).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace imbus::broker {

enum class HaState : uint8_t {
  kPrimary = 1,  // the primary, started, has not decided yet
  kBackup = 2,   // the backup, started, waits for the primary to be active
  kActive = 3,
  kPassive = 4,
};

const char* HaStateName(HaState s);

class BinaryStar {
 public:
  using Clock = std::chrono::steady_clock;

  BinaryStar(bool primary, std::chrono::milliseconds peer_timeout, Clock::time_point now);

  HaState state() const { return state_; }
  bool active() const { return state_ == HaState::kActive; }
  bool primary() const { return primary_; }

  // The peer's published state arrived. True when our state changed (reason()).
  bool OnPeerState(HaState peer, Clock::time_point now);
  // An edge or worker spoke to us. True when we serve it: we are active, or this is
  // the client that makes us active (reason() then says why).
  bool OnClientRequest(Clock::time_point now);
  // Why the state last changed, for the log.
  const std::string& reason() const { return reason_; }
  // How long since we heard the peer (for STATS and logs).
  std::chrono::milliseconds PeerSilence(Clock::time_point now) const;

 private:
  void Become(HaState s, std::string why);

  bool primary_;
  HaState state_;
  std::chrono::milliseconds peer_timeout_;
  Clock::time_point peer_heard_;  // start time until the peer speaks
  std::string reason_;
};

}  // namespace imbus::broker

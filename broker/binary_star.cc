#include "broker/binary_star.h"

#include <utility>

namespace imbus::broker {

const char* HaStateName(HaState s) {
  switch (s) {
    case HaState::kPrimary:
      return "primary";
    case HaState::kBackup:
      return "backup";
    case HaState::kActive:
      return "active";
    case HaState::kPassive:
      return "passive";
  }
  return "?";
}

BinaryStar::BinaryStar(bool primary, std::chrono::milliseconds peer_timeout, Clock::time_point now)
    : primary_(primary),
      state_(primary ? HaState::kPrimary : HaState::kBackup),
      peer_timeout_(peer_timeout),
      peer_heard_(now),
      reason_("started") {}

void BinaryStar::Become(HaState s, std::string why) {
  state_ = s;
  reason_ = std::move(why);
}

std::chrono::milliseconds BinaryStar::PeerSilence(Clock::time_point now) const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - peer_heard_);
}

bool BinaryStar::OnPeerState(HaState peer, Clock::time_point now) {
  peer_heard_ = now;
  const HaState before = state_;
  switch (state_) {
    case HaState::kPrimary:
      if (peer == HaState::kBackup || peer == HaState::kPassive) {
        Become(HaState::kActive, "the backup is up and waits for us");
      } else if (peer == HaState::kActive) {
        // We restarted while the backup served: it keeps serving, we stand by.
        Become(HaState::kPassive, "the backup is active");
      }
      break;
    case HaState::kBackup:
      if (peer == HaState::kActive) Become(HaState::kPassive, "the primary is active");
      break;
    case HaState::kActive:
      if (peer == HaState::kActive && !primary_) {
        // Both active (clients were split during a partition): one must yield, and
        // by rule it is the backup; its clients move to the primary and re-bind.
        Become(HaState::kPassive, "both brokers were active; the backup yields");
      }
      break;
    case HaState::kPassive:
      if (peer == HaState::kPrimary || peer == HaState::kBackup) {
        Become(HaState::kActive, "the other broker restarted");
      } else if (peer == HaState::kPassive && primary_) {
        Become(HaState::kActive, "both brokers were passive; the primary serves");
      }
      break;
  }
  return state_ != before;
}

bool BinaryStar::OnClientRequest(Clock::time_point now) {
  if (state_ == HaState::kActive) return true;
  const bool peer_gone = now - peer_heard_ >= peer_timeout_;
  if (state_ == HaState::kPrimary && peer_gone) {
    Become(HaState::kActive, "no backup heard since start; a client came");
    return true;
  }
  if (state_ == HaState::kPassive && peer_gone) {
    Become(HaState::kActive, "failover: the active broker is silent and a client came");
    return true;
  }
  return false;  // kBackup never serves before the primary was seen active
}

}  // namespace imbus::broker

// Public. PushStore: the push service's MariaDB access (schema migration 5 tables
// push_devices, push_settings, push_outbox; reads of messages and users). The msg
// service writes push_outbox rows itself, in the transaction of the messages
// (MsgStore); everything else about the outbox is here: workers claim due rows
// under a lease (SELECT ... FOR UPDATE SKIP LOCKED, so several workers never wait
// for each other's rows), then delete, reschedule or dead-letter each one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/db/db.h"

namespace imbus::actors::push {

inline constexpr size_t kMaxPlatform = 16;
inline constexpr size_t kMaxToken = 512;
inline constexpr size_t kMaxDevicesPerUser = 10;

struct Device {
  std::string platform;
  std::string token;
};

// One row of the outbox: the notification for `uid` of message (conv, seq).
struct OutboxKey {
  uint64_t uid = 0;
  std::string conv;
  uint64_t seq = 0;
  bool operator==(const OutboxKey& o) const {
    return uid == o.uid && seq == o.seq && conv == o.conv;
  }
};

// A claimed row with what its notification needs.
struct Notification {
  OutboxKey key;
  uint32_t tries = 0;  // counting this one
  uint64_t sender = 0;
  std::string sender_name;  // empty when the sender's account is gone
  uint64_t gid = 0;
  int64_t ts = 0;
  std::optional<std::string> text;  // nullopt: the recipient chose no preview
  std::vector<Device> devices;      // empty: the recipient has none left
};

class PushStore {
 public:
  explicit PushStore(Db* db) : db_(db) {}

  // Registers (platform, token) for uid, moving it from any other user; keeps at most
  // kMaxDevicesPerUser per user (the oldest go).
  void RegisterDevice(uint64_t uid, const Device& d, int64_t now_ms);
  // Removes (platform, token) if it is uid's; true when it was.
  bool UnregisterDevice(uint64_t uid, const Device& d);
  bool Preview(uint64_t uid);  // default true
  void SetPreview(uint64_t uid, bool preview);

  // Claims up to `limit` rows due at `now_ms` for `worker`: each one's tries go up by
  // one and it is not due again before `lease_until_ms` (so a worker that dies
  // mid-delivery leaves it to the others after the lease). Rows whose tries had
  // reached `max_tries` already (their workers died) become dead letters instead;
  // their count goes to *dead. Then reads what the notifications need.
  std::vector<Notification> Claim(const std::string& worker, int64_t now_ms, int64_t lease_until_ms,
                                  size_t limit, uint32_t max_tries, uint64_t* dead);
  // Delivered (or nothing to deliver): the row goes.
  void Delete(const OutboxKey& k);
  // Another try at `due_ms`, if the row is still `worker`'s claim.
  void Reschedule(const OutboxKey& k, const std::string& worker, int64_t due_ms,
                  const std::string& error);
  // Dead letter, if the row is still `worker`'s claim.
  void Kill(const OutboxKey& k, const std::string& worker, const std::string& error);

 private:
  Db* db_;  // not owned
};

}  // namespace imbus::actors::push

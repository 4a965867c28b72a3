// Internal to the msg tests. Users, groups and direct DB checks over a Stack.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "actors/db/db.h"
#include "client/msg_api.h"
#include "test/integration/stack_util.h"
#include "test/support/mariadb.h"
#include "test/integration/stack_db.h"

namespace imbus::testing {

inline constexpr char kPassword[] = "password1";

struct TestUser {
  std::string name;
  uint64_t uid = 0;
};

inline TestUser RegisterUser(Stack& stack, const std::string& prefix) {
  client::Client c = Connected(stack);
  TestUser u{UniqueName(prefix), 0};
  auto r = c.Register(u.name, kPassword);
  EXPECT_TRUE(r.ok()) << r.Describe();
  u.uid = r.value;
  return u;
}

inline client::Client LoggedIn(Stack& stack, const TestUser& u, const std::string& device = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  client::Client c = Connected(stack, 0, timeout);
  auto r = c.Login(u.name, kPassword, device);
  EXPECT_TRUE(r.ok()) << r.Describe();
  return c;
}

// Creates a group with these members directly in the DB (the directory tables of
// migration 2), independent of the directory service.
inline uint64_t CreateGroupInDb(actors::Db& db, const std::vector<uint64_t>& members) {
  const uint64_t gid =
      db.Query("INSERT INTO chat_groups (name, owner_uid) VALUES ('msgtest', ?)", {members.at(0)})
          .insert_id;
  for (uint64_t uid : members) {
    db.Query("INSERT INTO group_members (gid, uid, role) VALUES (?, ?, ?)",
             {gid, uid, std::string_view(uid == members[0] ? "owner" : "member")});
  }
  return gid;
}

// The next MSG/MESSAGE push within `timeout` (other pushes are skipped).
inline std::optional<client::Message> WaitMessage(client::Client& c,
                                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::optional<client::Push> p = c.connection().WaitPush(left);
    if (!p) return std::nullopt;
    if (auto m = client::MessageFromPush(*p)) return m;
  }
}

// Sends (same cmid every time) until the server acknowledges it or `timeout` passes,
// reconnecting and logging in again when the connection was lost.
inline client::Result<client::SentMessage> SendUntilOk(
    Stack& stack, client::Client& c, const TestUser& u, bool group, uint64_t to,
    const std::string& cmid, const std::string& text,
    std::chrono::milliseconds timeout = std::chrono::seconds(40), int* failures = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  client::Result<client::SentMessage> r;
  for (;;) {
    r = group ? client::SendToGroup(c, to, cmid, text) : client::SendToUser(c, to, cmid, text);
    if (r.ok() || std::chrono::steady_clock::now() > deadline) return r;
    if (failures != nullptr) ++*failures;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (r.code == client::kCodeDisconnected ||
        r.code == static_cast<int>(codec::Code::kUnauthenticated)) {
      std::string error;
      if (c.Connect("127.0.0.1", static_cast<uint16_t>(stack.edge_port(0)), &error)) {
        (void)c.Login(u.name, kPassword);
      }
    }
  }
}

}  // namespace imbus::testing

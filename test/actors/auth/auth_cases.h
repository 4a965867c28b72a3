// Test-only. The AUTH behaviour suite, run once per AuthStore implementation
// (auth_memory_test: MemoryAuthStore; auth_mariadb_test: MariaDbAuthStore).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "actors/auth/auth_service.h"
#include "actors/dispatcher.h"
#include "codec/body.h"
#include "codec/bus.h"

namespace imbus::actors::testing {

// Makes a fresh, empty store for one test; the returned store may keep a pointer to
// resources the factory owns until the next call.
struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<AuthStore>()> make;
};

struct CallResult {
  codec::ReplyMeta meta;
  int code = -1;
  std::string error;
  codec::Body body;
};

class AuthCasesTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;

  // Sends one AUTH request (body built by the caller) through a Dispatcher.
  CallResult Call(uint16_t command, const std::string& body, uint64_t conn_uid = 0,
                  const std::string& conn_device = "");
  uint64_t RegisterOk(const std::string& name, const std::string& password);
  std::string LoginOk(const std::string& name, const std::string& password,
                      const std::string& device = "");

  int64_t now_ms_ = 1'700'000'000'000;
  Dispatcher dispatcher_;
};

std::string NamePassword(const std::string& name, const std::string& password);

}  // namespace imbus::actors::testing

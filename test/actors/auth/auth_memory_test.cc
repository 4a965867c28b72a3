// AUTH logic against MemoryAuthStore.
#include "actors/auth/memory_auth_store.h"
#include "test/actors/auth/auth_cases.h"

namespace imbus::actors::testing {

INSTANTIATE_TEST_SUITE_P(Memory, AuthCasesTest,
                         ::testing::Values(StoreFactory{
                             "memory", [] { return std::make_unique<MemoryAuthStore>(); }}),
                         [](const auto& p) { return p.param.name; });

}  // namespace imbus::actors::testing

// Helpers for the runtime tests: a watchdog so that no test can hang, and worker-count params.
#pragma once

#include <gtest/gtest.h>

#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft::rt::testing {

/// Scales stress sizes down under sanitizers.
#if defined(WEFT_TSAN)
constexpr int kScale = 50;
#elif defined(WEFT_ASAN)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

/// Test fixture parameterised by worker count (1 and 8, as the issue asks).
class RtTest : public ::testing::TestWithParam<unsigned> {
  protected:
    RuntimeOptions options() {
        RuntimeOptions o;
        o.workers = GetParam();
        return o;
    }
};

inline std::string worker_name(const ::testing::TestParamInfo<unsigned>& info) {
    return "w" + std::to_string(info.param);
}

}  // namespace weft::rt::testing

#define WEFT_WORKER_PARAMS(Suite) \
    INSTANTIATE_TEST_SUITE_P(W, Suite, ::testing::Values(1u, 8u), weft::rt::testing::worker_name)

#include "kernels/guarded_backend.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/device_array.h"
#include "core/error.h"
#include "kernels/cpu_backend.h"

namespace cosy {
namespace {

std::unique_ptr<Backend> guarded() { return create_guarded_backend(cpu::create_cpu_backend(1)); }

TEST(GuardedBackend, RunsKernelsOnItsMemoryAndCopiesBothWays) {
  auto b = guarded();
  auto s = b->create_stream();
  const std::vector<float> x = {1, 2, 3, 4, 5};
  DeviceArray<float> dx(*b, x.size()), dy(*b, x.size());
  b->copy(*s, dx.data(), x.data(), x.size() * sizeof(float));
  b->copy(*s, dy.data(), x.data(), x.size() * sizeof(float));
  b->primitives().axpby(*s, dx.data(), dy.data(), 5, 2.0f, 1.0f);
  std::vector<float> y(x.size());
  b->copy(*s, y.data(), dy.data(), y.size() * sizeof(float));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], 3 * x[i]);
  const auto c = ConstArray<float>::upload(*b, {10, 20, 30, 40, 50});
  b->primitives().add_row(*s, dx.data(), c.data(), dy.data(), 1, 5);
  b->copy(*s, y.data(), dy.data(), y.size() * sizeof(float));
  EXPECT_EQ(y[4], 55.0f);
}

TEST(GuardedBackend, RefusesHostMemoryWherePrimitivesNeedItsOwn) {
  auto b = guarded();
  auto s = b->create_stream();
  std::vector<float> host(8, 1.0f);
  DeviceArray<float> dev(*b, 8);
  EXPECT_THROW(b->primitives().axpby(*s, host.data(), dev.data(), 8, 1, 1), Error);
  EXPECT_THROW(b->primitives().fill_2d(*s, host.data(), 8, 1, 8, 0.0f), Error);
  b->primitives().fill_2d(*s, dev.data(), 8, 1, 8, 0.0f);  // its own memory: fine
}

TEST(GuardedBackend, ReusesFreedMemory) {
  auto b = guarded();
  void* first = b->allocate(100000, MemoryKind::Device);
  b->deallocate(first, MemoryKind::Device);
  void* again = b->allocate(50000, MemoryKind::Device);
  EXPECT_EQ(again, first);
  b->deallocate(again, MemoryKind::Device);
}

using GuardedBackendDeathTest = ::testing::Test;

TEST_F(GuardedBackendDeathTest, TheHostCannotTouchItsMemory) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto b = guarded();
  DeviceArray<float> dev(*b, 16);
  EXPECT_DEATH({ dev.data()[3] = 1.0f; }, "");
}

}  // namespace
}  // namespace cosy

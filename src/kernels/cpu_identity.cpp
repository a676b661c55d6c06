#include "kernels/cpu_identity.h"

#include <cpuid.h>

#include <array>
#include <cstring>

namespace cosy::cpu {

std::string cpu_model_name() {
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext < 0x80000004u) return "unknown";
  std::array<unsigned, 12> regs{};
  for (size_t i = 0; i < 3; ++i) {
    __get_cpuid(0x80000002u + static_cast<unsigned>(i), &regs[i * 4], &regs[i * 4 + 1],
                &regs[i * 4 + 2], &regs[i * 4 + 3]);
  }
  char brand[49] = {};
  std::memcpy(brand, regs.data(), 48);
  std::string s(brand);
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(' ');
  return first == std::string::npos ? "unknown" : s.substr(first, last - first + 1);
}

std::vector<std::string> cpu_isa_flags() {
  __builtin_cpu_init();
  std::vector<std::string> out;
  const auto add = [&](bool has, const char* name) {
    if (has) out.emplace_back(name);
  };
  add(__builtin_cpu_supports("avx2") != 0, "avx2");
  add(__builtin_cpu_supports("fma") != 0, "fma");
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool leaf1 = __get_cpuid(1, &a, &b, &c, &d) != 0;
  add(leaf1 && (c & bit_F16C) != 0, "f16c");
  add(__builtin_cpu_supports("avx512f") != 0, "avx512f");
  add(__builtin_cpu_supports("avx512bw") != 0, "avx512bw");
  add(__builtin_cpu_supports("avx512vl") != 0, "avx512vl");
  add(__builtin_cpu_supports("avx512bf16") != 0, "avx512_bf16");
  add(__builtin_cpu_supports("avx512vnni") != 0, "avx512_vnni");
  // Leaf 7's EDX: AVX512_FP16 (bit 23) and AMX (22 bf16, 24 tile, 25 int8), which GCC 12's
  // __builtin_cpu_supports does not all name.
  const bool leaf7 = __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0;
  add(leaf7 && (d & (1u << 23)) != 0, "avx512_fp16");
  add(leaf7 && (d & (1u << 24)) != 0, "amx_tile");
  add(leaf7 && (d & (1u << 22)) != 0, "amx_bf16");
  add(leaf7 && (d & (1u << 25)) != 0, "amx_int8");
  return out;
}

std::string cpu_summary() {
  std::string s = cpu_model_name() + " [";
  const auto flags = cpu_isa_flags();
  for (size_t i = 0; i < flags.size(); ++i) s += (i > 0 ? " " : "") + flags[i];
  return s + "]";
}

}  // namespace cosy::cpu

// What this CPU is, for the figures and the tuning file: its model name and the
// instruction-set extensions the kernels care about.
#pragma once

#include <string>
#include <vector>

namespace cosy::cpu {

// The CPUID brand string ("AMD EPYC 9654 96-Core Processor"), trimmed; "unknown" without one.
std::string cpu_model_name();
// The extensions present, in a fixed order: avx2 fma f16c avx512f avx512bw avx512vl
// avx512_bf16 avx512_vnni avx512_fp16 amx_tile amx_bf16 amx_int8.
std::vector<std::string> cpu_isa_flags();
// "<model> [flag flag ...]", one line.
std::string cpu_summary();

}  // namespace cosy::cpu

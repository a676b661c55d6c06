// The GEMMs for the AVX-512 formats (this file alone is built with AVX-512 flags; gemm()
// calls it only for weights PackedWeight accepted, which it refuses on a CPU without them):
// - bf16 (AVX512_BF16): A's rows are rounded to bf16 (k, k+1) pairs once per call;
//   vdpbf16ps adds both products of a pair into a float32 lane, 32 products an
//   instruction against the 16 of a float32 FMA.
// - w8a8 (AVX512-VNNI): A's rows are quantised once per call to int8 (k..k+3) quads, a
//   scale per group of kW8a8GroupK values; vpdpbusd adds the four u8 × s8 products of a
//   quad (weight stored + 128, activation) into an int32 lane, 64 products an
//   instruction. Each group's exact int32 sum, less 128 · Σ its activations, is scaled
//   and added in float32.
// Both weights hold 64 bytes per unit row of a panel (16 pairs, 16 quads), so one tile
// loop serves both, with the dot product and the epilogue as the format's.
// - bf16 on AMX (AMX-TILE + AMX-BF16, Sapphire Rapids and later), where the OS grants the
//   tile state: TDPBF16PS multiplies a 16-row × 32-value bf16 tile of A by a 16-pair ×
//   16-column tile of B into a 16 × 16 float32 tile, 8192 products an instruction. A bf16
//   panel, [K/2][16][2], is a column of B tiles as stored. Every row takes the tiles (tails
//   too), so a row's result does not depend on the rows beside it in the call; it differs
//   from the AVX512_BF16 kernel's in the order of the float32 sums (bf16 is a tolerance
//   format), so the choice is the machine's, not the shape's (bf16_uses_amx).
// - w8a8 on AMX (AMX-INT8): TDPBSUD, s8 activations × the u8 stored weights, exact int32
//   sums a group as vpdpbusd's, scaled as there: the VNNI kernel's bits (w8a8_uses_amx).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() (a self-initialised local) as the
// unused merge source, and -Wmaybe-uninitialized reports every inlined use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/gemm_tiling.h"

namespace cosy::cpu {

namespace {

// The first n lanes, n clamped to [0, 16].
__mmask16 first_lanes(int64_t n) {
  if (n <= 0) return 0;
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// Rows [m_begin, m_end) of problem p as bf16 pairs, k2 pairs a row (zero-padded).
void convert_rows(const GemmProblem& p, int64_t m_begin, int64_t m_end, int64_t k2, uint32_t* out) {
  const int64_t width = p.a.tap_width;
  for (int64_t m = m_begin; m < m_end; ++m) {
    auto* dst = reinterpret_cast<uint16_t*>(out + (m - m_begin) * k2);
    int64_t at = 0;  // bf16 values written
    for (int64_t tap = 0; tap < p.a.taps; ++tap) {
      const float* src = p.a.base + m * p.a.row_stride + tap * p.a.tap_stride;
      int64_t c = 0;
      for (; c + 32 <= width; c += 32, at += 32) {
        const __m512bh v =
            _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));
        _mm512_storeu_si512(dst + at, std::bit_cast<__m512i>(v));
      }
      if (c < width) {
        const int64_t left = width - c;  // 1..31
        const __m512bh v =
            _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(first_lanes(left - 16), src + c + 16),
                                _mm512_maskz_loadu_ps(first_lanes(left), src + c));
        _mm512_mask_storeu_epi16(dst + at, static_cast<__mmask32>((1ull << left) - 1),
                                 std::bit_cast<__m512i>(v));
        at += left;
      }
    }
    for (; at < 2 * k2; ++at) dst[at] = 0;
  }
}

// Rows [m_begin, m_end) of problem p as int8 quads, k4 quads a row (zero-padded), in
// groups of kW8a8GroupK values along k, each group with its own scale (its max |x| maps to
// 127: q = round(x · 127 / max)) and its offset 128 · Σq, which takes back out what the
// weights' +128 adds (see W8a8Format). Groups rather than one scale a row: an outlier
// then costs only its own group's precision; the LM's MLP-down input needed it (top-1
// agreement with fp32 85 % with a scale a row, 89 % as int8 weights alone).
void quantise_rows(const GemmProblem& p, int64_t m_begin, int64_t m_end, int64_t k4, int64_t groups,
                   uint32_t* out, float* group_scale, int32_t* group_offset) {
  const int64_t width = p.a.tap_width, bytes = 4 * k4, k = p.a.taps * width;
  // A row's k values, taps side by side, zero-padded to whole groups; a dense row is read
  // in place, all but a last partial group.
  thread_local std::vector<float> flat;
  const bool dense = p.a.taps == 1;
  flat.assign(static_cast<size_t>(dense ? kW8a8GroupK : groups * kW8a8GroupK), 0.0f);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const float* row = p.a.base + m * p.a.row_stride;
    if (dense) {
      const int64_t tail = k - (groups - 1) * kW8a8GroupK;
      std::copy(row + k - tail, row + k, flat.begin());
    } else {
      for (int64_t tap = 0; tap < p.a.taps; ++tap) {
        const float* src = row + tap * p.a.tap_stride;
        std::copy(src, src + width, flat.begin() + tap * width);
      }
    }
    auto* dst = reinterpret_cast<int8_t*>(out + (m - m_begin) * k4);
    for (int64_t g = 0; g < groups; ++g) {
      const float* x = !dense           ? flat.data() + g * kW8a8GroupK
                       : g + 1 < groups ? row + g * kW8a8GroupK
                                        : flat.data();
      __m512 vmax = _mm512_setzero_ps();
      __mmask16 nan = 0;  // max drops NaN: it is tracked apart, to reach the output
      for (int64_t c = 0; c < kW8a8GroupK; c += 16) {
        const __m512 v = _mm512_loadu_ps(x + c);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __m512i bits = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
        vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(bits));
      }
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, vmax);
      const float amax = *std::max_element(lanes, lanes + 16);
      // An all-zero group quantises to zeros with scale 0: its products vanish exactly.
      const __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
      __m512i qsum = _mm512_setzero_si512();
      for (int64_t c = 0; c < kW8a8GroupK; c += 16) {
        const int64_t at = g * kW8a8GroupK + c;
        if (at >= bytes) break;
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + c), inv));  // ties even
        q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        qsum = _mm512_add_epi32(qsum, q);
        _mm_mask_storeu_epi8(dst + at, first_lanes(bytes - at), _mm512_cvtepi32_epi8(q));
      }
      alignas(64) int32_t sums[16];
      _mm512_store_si512(sums, qsum);
      const size_t at = static_cast<size_t>((m - m_begin) * groups + g);
      // A NaN anywhere in the group makes its scale, and so the row's outputs, NaN (an
      // infinity already does: its scale is infinite), as float32 arithmetic would.
      group_scale[at] = nan != 0 ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
      group_offset[at] = 128 * std::accumulate(sums, sums + 16, 0);
    }
  }
}

// The format's row conversion and dot product for the shared tile loop.
struct Bf16Format {
  static constexpr int64_t kPerUnit = 2;     // k values in one 32-bit unit
  static constexpr int64_t kGroupUnits = 0;  // one float32 sum over all of k
  using Acc = __m512;
  static Acc zero() { return _mm512_setzero_ps(); }
  // a: one unit of A broadcast; b: a unit row of the weight panel.
  static Acc dot(Acc acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, std::bit_cast<__m512bh>(a), std::bit_cast<__m512bh>(b));
  }
};

// Weights stored as q + 128 (unsigned), activations as q: vpdpbusd's u8 × s8.
struct W8a8Format {
  static constexpr int64_t kPerUnit = 4;
  static constexpr int64_t kGroupUnits = kW8a8GroupK / 4;  // int32 sums, one a group
  using Acc = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static Acc dot(Acc acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, b, a); }
};

struct TileArgs {
  const uint32_t* a;            // first row's units
  int64_t units;                // units per row (and per panel row count)
  int64_t a_stride;             // units from one row of A to the next (>= units)
  const float* group_scale;     // w8a8: the first row's group scales, `groups` a row
  const int32_t* group_offset;  // w8a8: and their offsets
  int64_t groups;
  const uint32_t* panel0;  // 16 units per unit row
  const uint32_t* panel1;  // null: one panel
  const char* prefetch;    // the next panels' bytes to bring into L1 on the way, or null
  int64_t prefetch_bytes;
  float* c;
  int64_t ldc;
  int64_t cols;  // valid columns from c (1..32)
  const float* bias;
  const float* col_scale;  // w8a8: the weight's column scales from the tile's column 0
  bool accumulate;
};

// One row's columns [col0, col0 + 16) of t's output, masked to those that exist: the sums
// (w8a8: times the columns' scales) plus the bias, plus C when accumulating.
struct PanelEpilogue {
  PanelEpilogue(const TileArgs& t, int j) : col0(kPanel * j) {
    const int64_t cols = std::clamp<int64_t>(t.cols - col0, 0, kPanel);
    mask = static_cast<__mmask16>((1u << cols) - 1);
    bias = t.bias != nullptr ? _mm512_maskz_loadu_ps(mask, t.bias + col0) : _mm512_setzero_ps();
    if (t.col_scale != nullptr) col_scale = _mm512_maskz_loadu_ps(mask, t.col_scale + col0);
  }
  bool empty() const { return mask == 0; }
  template <bool kGrouped>
  void store(const TileArgs& t, float* row, __m512 sum) const {
    float* c = row + col0;
    __m512 v = kGrouped ? _mm512_fmadd_ps(sum, col_scale, bias) : _mm512_add_ps(sum, bias);
    if (t.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, c));
    _mm512_mask_storeu_ps(c, mask, v);
  }
  int64_t col0;
  __mmask16 mask;
  __m512 bias;
  __m512 col_scale = _mm512_setzero_ps();
};

template <class Format, int MR, int NP>
void run_tile(const TileArgs& t) {
  constexpr bool kGrouped = Format::kGroupUnits > 0;
  typename Format::Acc acc[MR][NP];
  __m512 sum[MR][NP];  // grouped formats: the scaled group sums so far
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NP; ++j) sum[r][j] = _mm512_setzero_ps();
  const int64_t pf_lines = t.prefetch != nullptr ? t.prefetch_bytes / 64 : 0;
  const int64_t step = kGrouped ? Format::kGroupUnits : t.units;
  for (int64_t g0 = 0, g = 0; g0 < t.units; g0 += step, ++g) {
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NP; ++j) acc[r][j] = Format::zero();
    const int64_t g_end = std::min(t.units, g0 + step);
    for (int64_t u = g0; u < g_end; ++u) {
      // The weights' next panels stream from memory behind this tile's work: two lines a
      // unit row, the rate this tile consumes its own.
      if (u * 2 < pf_lines) {
        _mm_prefetch(t.prefetch + u * 128, _MM_HINT_T0);
        _mm_prefetch(t.prefetch + u * 128 + 64, _MM_HINT_T0);
      }
      const __m512i b0 = _mm512_loadu_si512(t.panel0 + u * kPanel);
      __m512i b1{};
      if constexpr (NP == 2) b1 = _mm512_loadu_si512(t.panel1 + u * kPanel);
      for (int r = 0; r < MR; ++r) {
        const __m512i a = _mm512_set1_epi32(static_cast<int>(t.a[r * t.a_stride + u]));
        acc[r][0] = Format::dot(acc[r][0], a, b0);
        if constexpr (NP == 2) acc[r][1] = Format::dot(acc[r][1], a, b1);
      }
    }
    if constexpr (kGrouped) {
      for (int r = 0; r < MR; ++r) {
        const __m512i offset = _mm512_set1_epi32(t.group_offset[r * t.groups + g]);
        const __m512 scale = _mm512_set1_ps(t.group_scale[r * t.groups + g]);
        for (int j = 0; j < NP; ++j) {
          const __m512 exact = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], offset));
          sum[r][j] = _mm512_fmadd_ps(exact, scale, sum[r][j]);
        }
      }
    }
  }
  for (int j = 0; j < NP; ++j) {
    const PanelEpilogue out(t, j);
    if (out.empty()) break;
    for (int r = 0; r < MR; ++r) {
      if constexpr (kGrouped) {
        out.store<true>(t, t.c + r * t.ldc, sum[r][j]);
      } else {
        out.store<false>(t, t.c + r * t.ldc, acc[r][j]);
      }
    }
  }
}

// Rows [0, rows) of t in micro-kernel tiles, split as the float32 GEMM splits them; only
// the first tile prefetches the next panels.
template <class Format, int NP>
void run_rows(const TileArgs& t, int64_t rows) {
  for_each_tile(0, rows, [&](int64_t r0, int64_t n) {
    TileArgs u = t;
    u.a = t.a + r0 * t.a_stride;
    if (t.groups > 0) {
      u.group_scale = t.group_scale + r0 * t.groups;
      u.group_offset = t.group_offset + r0 * t.groups;
    }
    u.c = t.c + r0 * t.ldc;
    if (r0 > 0) u.prefetch = nullptr;
    with_rows(n, [&](auto mr) { run_tile<Format, decltype(mr)::value, NP>(u); });
  });
}

// AMX's tile registers: C tiles 0-3 (two 16-row blocks × two panels), A tiles 4-5, B
// tiles 6-7; each 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
constexpr int64_t kTileUnits = 16;  // 32-bit units in a tile row (and unit rows in a B tile)
constexpr int64_t kAmxRows = 32;    // rows of A a pass over the panels covers
// w8a8 takes the tiles from this many rows a task; fewer (decode at one or two streams,
// memory-bound) stay on VNNI, a few per cent faster there. The same bits either way.
constexpr int64_t kAmxW8a8Rows = 4;

// Loaded by each task that runs tiles (the configuration is per thread), released after.
class TileScope {
 public:
  TileScope() {
    TileConfig cfg;
    for (int i = 0; i < 8; ++i) {
      cfg.colsb[i] = 64;
      cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
  }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

// The formats' tile products: C tiles 0-3 += A tiles 4-5 × B tiles 6-7 (the second row
// block and panel when there). The tile numbers are literals: the intrinsics paste them.
struct Bf16Tiles {
  static void dot(bool two, bool second) {
    _tile_dpbf16ps(0, 4, 6);
    if (two) _tile_dpbf16ps(1, 4, 7);
    if (second) _tile_dpbf16ps(2, 5, 6);
    if (two && second) _tile_dpbf16ps(3, 5, 7);
  }
};
// Activations signed (A), weights stored + 128 unsigned (B): TDPBSUD's s8 × u8, exact
// int32 sums as vpdpbusd's.
struct W8a8Tiles {
  static void dot(bool two, bool second) {
    _tile_dpbsud(0, 4, 6);
    if (two) _tile_dpbsud(1, 4, 7);
    if (second) _tile_dpbsud(2, 5, 6);
    if (two && second) _tile_dpbsud(3, 5, 7);
  }
};

void store_tiles(void* out) {
  auto* o = static_cast<char*>(out);
  _tile_stored(0, o, 64);
  _tile_stored(1, o + 1024, 64);
  _tile_stored(2, o + 2048, 64);
  _tile_stored(3, o + 3072, 64);
}

// Rows [0, rows) of converted A (`stride` units a row, a multiple of 16, zero-padded; 16
// rows readable past `rows`) times one or two panels of `units` unit rows, into t.c with
// the format's epilogue. w8a8 sums each group's exact products in the tiles, then scales
// them into float32 as run_tile does, in the same order: the same bits.
template <class Format, class Tiles>
void amx_rows(const TileArgs& t, int64_t stride, int64_t rows) {
  constexpr bool kGrouped = Format::kGroupUnits > 0;
  static_assert(Format::kGroupUnits % kTileUnits == 0, "a group is whole tiles");
  const int64_t full = t.units / kTileUnits, blocks = stride / kTileUnits;
  const int64_t per_group = kGrouped ? Format::kGroupUnits / kTileUnits : blocks;
  const bool two = t.panel1 != nullptr;
  // The panels' last partial B tile, zero-padded: the panel ends there.
  alignas(64) uint32_t tail[2][kTileUnits * kPanel];
  if (full < blocks) {
    const size_t bytes = static_cast<size_t>(t.units - full * kTileUnits) * kPanel * 4;
    std::memset(tail, 0, sizeof(tail));
    std::memcpy(tail[0], t.panel0 + full * kTileUnits * kPanel, bytes);
    if (two) std::memcpy(tail[1], t.panel1 + full * kTileUnits * kPanel, bytes);
  }
  const size_t a_stride = static_cast<size_t>(stride) * 4;
  alignas(64) float out[4][16 * kPanel];      // the products (bf16), or the scaled sums (w8a8)
  alignas(64) int32_t exact[4][16 * kPanel];  // w8a8: one group's sums
  for (int64_t r0 = 0; r0 < rows; r0 += kAmxRows) {
    const bool second = r0 + 16 < rows;
    const int64_t block_rows = std::min(kAmxRows, rows - r0);
    const uint32_t* a0 = t.a + r0 * stride;
    const uint32_t* a1 = a0 + 16 * stride;
    if constexpr (kGrouped) std::memset(out, 0, sizeof(out));
    for (int64_t kb0 = 0, g = 0; kb0 < blocks; kb0 += per_group, ++g) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t kb = kb0; kb < std::min(blocks, kb0 + per_group); ++kb) {
        const bool whole = kb < full;
        _tile_loadd(6, whole ? t.panel0 + kb * kTileUnits * kPanel : tail[0], 64);
        if (two) _tile_loadd(7, whole ? t.panel1 + kb * kTileUnits * kPanel : tail[1], 64);
        _tile_loadd(4, a0 + kb * kTileUnits, a_stride);
        if (second) _tile_loadd(5, a1 + kb * kTileUnits, a_stride);
        Tiles::dot(two, second);
      }
      if constexpr (kGrouped) {
        store_tiles(exact);
        for (int64_t r = 0; r < block_rows; ++r) {
          const int64_t at = (r0 + r) * t.groups + g;
          const __m512i offset = _mm512_set1_epi32(t.group_offset[at]);
          const __m512 scale = _mm512_set1_ps(t.group_scale[at]);
          for (int j = 0; j < (two ? 2 : 1); ++j) {
            const int tile = (r >= 16 ? 2 : 0) + j;
            float* sum = out[tile] + (r % 16) * kPanel;
            const __m512i e = _mm512_load_si512(exact[tile] + (r % 16) * kPanel);
            const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(e, offset));
            _mm512_store_ps(sum, _mm512_fmadd_ps(v, scale, _mm512_load_ps(sum)));
          }
        }
      }
    }
    if constexpr (!kGrouped) store_tiles(out);
    for (int j = 0; j < (two ? 2 : 1); ++j) {
      const PanelEpilogue epilogue(t, j);
      if (epilogue.empty()) break;
      for (int64_t r = 0; r < block_rows; ++r) {
        const __m512 sum = _mm512_load_ps(out[(r >= 16 ? 2 : 0) + j] + (r % 16) * kPanel);
        epilogue.store<kGrouped>(t, t.c + (r0 + r) * t.ldc, sum);
      }
    }
  }
}

// CPUID leaf 7's EDX bits: AMX-BF16, AMX-TILE, AMX-INT8 (compilers' cpu-feature
// builtins differ on these names, so they are read here).
constexpr unsigned kAmxBf16Bit = 1u << 22, kAmxTileBit = 1u << 24, kAmxInt8Bit = 1u << 25;
unsigned amx_cpuid_bits() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return 0;
  return d;
}

// Whether the CPU has the tiles and `bit`'s instructions, and Linux granted this process the
// tile data state (asked once, with arch_prctl; a kernel without AMX support refuses).
bool amx_ready(unsigned bit) {
  static const bool granted = [] {
    if ((amx_cpuid_bits() & kAmxTileBit) == 0) return false;
    constexpr long kRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kTileData = 18;               // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return granted && (amx_cpuid_bits() & bit) != 0;
}
bool amx_bf16_ready() {
  static const bool ready = cpu_has_bf16() && amx_ready(kAmxBf16Bit);
  return ready;
}
bool amx_int8_ready() {
  static const bool ready = cpu_has_vnni() && amx_ready(kAmxInt8Bit);
  return ready;
}

std::atomic<bool> g_amx{true};

constexpr int64_t kConvertRows = 4;  // rows of A converted per pool task

// gemm() over a format whose weights are panels of 16 units a unit row; on AMX tiles
// (bf16 only), A's rows are laid out for tile loads: a multiple of 16 units a row, and 16
// rows readable past the last.
template <class Format, bool kAmx = false>
void gemm_units(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
                const GemmEpilogue& epi) {
  const int64_t k = w.in_features(), n = w.out_features();
  const int64_t units = (k + Format::kPerUnit - 1) / Format::kPerUnit;
  const int64_t stride = kAmx ? (units + kTileUnits - 1) / kTileUnits * kTileUnits : units;
  const int64_t pairs = (w.panels() + 1) / 2;
  const GemmTasks plan = plan_gemm_tasks(problems, k, pairs, pool.num_threads());
  if (plan.chunks.empty()) return;
  constexpr bool grouped = Format::kGroupUnits > 0;
  const int64_t groups = grouped ? (units + Format::kGroupUnits - 1) / Format::kGroupUnits : 0;
  // Chunk i's rows from row_offset[i]: their units, and (w8a8) their groups' scales.
  std::vector<size_t> row_offset(plan.chunks.size() + 1, 0);
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const auto& rc = plan.chunks[i];
    row_offset[i + 1] = row_offset[i] + static_cast<size_t>(rc.end - rc.begin);
  }
  // The caller's thread owns these buffers for the call; the pool's threads only read them.
  thread_local std::vector<uint32_t> a_units;
  thread_local std::vector<float> scales;
  thread_local std::vector<int32_t> offsets;
  const size_t rows = row_offset.back() + (kAmx ? 16 : 0);
  if (a_units.size() < rows * static_cast<size_t>(stride))
    a_units.resize(rows * static_cast<size_t>(stride));
  if (scales.size() < rows * static_cast<size_t>(groups)) {
    scales.resize(rows * static_cast<size_t>(groups));
    offsets.resize(scales.size());
  }
  // Not the vectors in the tasks: each thread has its own.
  uint32_t* const a_data = a_units.data();
  float* const scale_data = scales.data();
  int32_t* const offset_data = offsets.data();
  // A's rows converted in pieces of a few rows, so that even one chunk (a decode batch)
  // is converted on every thread.
  struct Piece {
    size_t chunk;
    int64_t begin, end;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const auto& rc = plan.chunks[i];
    for (int64_t m = rc.begin; m < rc.end; m += kConvertRows)
      pieces.push_back({i, m, std::min(rc.end, m + kConvertRows)});
  }
  pool.parallel_for(static_cast<int64_t>(pieces.size()), [&](int64_t i) {
    const Piece& pc = pieces[static_cast<size_t>(i)];
    const auto& rc = plan.chunks[pc.chunk];
    const size_t at = row_offset[pc.chunk] + static_cast<size_t>(pc.begin - rc.begin);
    uint32_t* out = a_data + at * static_cast<size_t>(stride);
    if constexpr (grouped) {
      const size_t g_at = at * static_cast<size_t>(groups);
      quantise_rows(problems[rc.problem], pc.begin, pc.end, stride, groups, out, scale_data + g_at,
                    offset_data + g_at);
    } else {
      convert_rows(problems[rc.problem], pc.begin, pc.end, stride, out);
    }
  });

  // Tasks over row chunks × groups of panel pairs, planned as the float32 GEMM's.
  const size_t panel_bytes = static_cast<size_t>(units) * kPanel * sizeof(uint32_t);
  pool.parallel_for(plan.tasks(), [&](int64_t task) {
    const auto chunk = static_cast<size_t>(task / plan.groups);
    const auto& rc = plan.chunks[chunk];
    const GemmProblem& p = problems[rc.problem];
    const int64_t g = task % plan.groups, per_group = plan.per_group;
    const int64_t pair_end = std::min(pairs, (g + 1) * per_group);
    std::optional<TileScope> tiles;  // loaded before this task's first tile product
    for (int64_t pr = g * per_group; pr < pair_end; ++pr) {
      const int64_t p0 = 2 * pr;
      const bool two = p0 + 1 < w.panels();
      TileArgs t{};
      t.a = a_data + row_offset[chunk] * static_cast<size_t>(stride);
      t.units = units;
      t.a_stride = stride;
      if (grouped) {
        t.group_scale = scale_data + row_offset[chunk] * static_cast<size_t>(groups);
        t.group_offset = offset_data + row_offset[chunk] * static_cast<size_t>(groups);
        t.groups = groups;
      }
      t.panel0 = static_cast<const uint32_t*>(w.panel(p0));
      t.panel1 = two ? static_cast<const uint32_t*>(w.panel(p0 + 1)) : nullptr;
      // The task's next pair of panels (contiguous after this pair).
      t.prefetch = pr + 1 < pair_end ? static_cast<const char*>(w.panel(p0 + 2)) : nullptr;
      t.prefetch_bytes = static_cast<int64_t>(panel_bytes) * (p0 + 3 < w.panels() ? 2 : 1);
      t.c = p.c + rc.begin * p.ldc + p0 * kPanel;
      t.ldc = p.ldc;
      t.cols = std::min<int64_t>(2 * kPanel, n - p0 * kPanel);
      t.bias = epi.bias != nullptr ? epi.bias + p0 * kPanel : nullptr;
      t.col_scale = w.scales() != nullptr ? w.scales() + p0 * kPanel : nullptr;
      t.accumulate = epi.accumulate;
      if constexpr (kAmx && !grouped) {
        if (!tiles) tiles.emplace();
        amx_rows<Format, Bf16Tiles>(t, stride, rc.end - rc.begin);
      } else if (kAmx && rc.end - rc.begin >= kAmxW8a8Rows) {
        if (!tiles) tiles.emplace();
        amx_rows<Format, W8a8Tiles>(t, stride, rc.end - rc.begin);
      } else if (two) {
        run_rows<Format, 2>(t, rc.end - rc.begin);
      } else {
        run_rows<Format, 1>(t, rc.end - rc.begin);
      }
    }
  });
}

}  // namespace

void pair_panel_bf16(const float* panel, int64_t rows, uint16_t* out) {
  // [r0 c0..c15 | r1 c0..c15] as bf16, then interleaved to (r0, r1) per column.
  static const __m512i kInterleave =
      _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t r = 0; r < rows; r += 2) {
    const __m512 lo = _mm512_loadu_ps(panel + r * kPanel);
    const __m512 hi =
        r + 1 < rows ? _mm512_loadu_ps(panel + (r + 1) * kPanel) : _mm512_setzero_ps();
    const __m512i both = std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_storeu_si512(out + r * kPanel, _mm512_permutexvar_epi16(kInterleave, both));
  }
}

void gemm_bf16_panels(const float* a, int64_t lda, int64_t m, int64_t k, const uint16_t* b,
                      int64_t panel_stride, int64_t panels, float* c, int64_t ldc) {
  const int64_t k2 = (k + 1) / 2;
  const bool amx = bf16_uses_amx();
  // On AMX: a multiple of 16 pairs a row, and 16 rows readable past the last (amx_rows).
  const int64_t stride = amx ? (k2 + kTileUnits - 1) / kTileUnits * kTileUnits : k2;
  const size_t values = static_cast<size_t>((m + (amx ? 16 : 0)) * stride);
  thread_local std::vector<uint32_t> a_pairs;  // runs inside one task: this thread's own
  if (a_pairs.size() < values) a_pairs.resize(values);
  const GemmProblem rows{{a, lda, 1, 0, k}, m, nullptr, 0};
  convert_rows(rows, 0, m, stride, a_pairs.data());
  std::optional<TileScope> tiles;
  if (amx) tiles.emplace();
  for (int64_t p = 0; p < panels; p += 2) {
    TileArgs t{};
    t.a = a_pairs.data();
    t.units = k2;
    t.a_stride = stride;
    t.panel0 = reinterpret_cast<const uint32_t*>(b + p * panel_stride);
    t.panel1 =
        p + 1 < panels ? reinterpret_cast<const uint32_t*>(b + (p + 1) * panel_stride) : nullptr;
    t.c = c + p * kPanel;
    t.ldc = ldc;
    t.cols = std::min<int64_t>(2, panels - p) * kPanel;
    if (amx) {
      amx_rows<Bf16Format, Bf16Tiles>(t, stride, m);
    } else if (t.panel1 != nullptr) {
      run_rows<Bf16Format, 2>(t, m);
    } else {
      run_rows<Bf16Format, 1>(t, m);
    }
  }
}

bool cpu_has_amx_bf16() { return amx_bf16_ready(); }
bool cpu_has_amx_int8() { return amx_int8_ready(); }

bool bf16_uses_amx() { return g_amx.load(std::memory_order_relaxed) && amx_bf16_ready(); }
bool w8a8_uses_amx() { return g_amx.load(std::memory_order_relaxed) && amx_int8_ready(); }

void set_amx(bool on) {
  if (on && !amx_bf16_ready() && !amx_int8_ready())
    fail("AMX: this CPU (or its OS) has no AMX tiles");
  g_amx.store(on, std::memory_order_relaxed);
}

void gemm_bf16(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
               const GemmEpilogue& epi) {
  if (w.format() != WeightFormat::BF16) fail("gemm_bf16: the weight is not bf16");
  if (bf16_uses_amx()) {
    gemm_units<Bf16Format, true>(pool, problems, w, epi);
  } else {
    gemm_units<Bf16Format>(pool, problems, w, epi);
  }
}

void gemm_w8a8(ThreadPool& pool, std::span<const GemmProblem> problems, const PackedWeight& w,
               const GemmEpilogue& epi) {
  if (w.format() != WeightFormat::W8A8) fail("gemm_w8a8: the weight is not w8a8");
  if (w8a8_uses_amx()) {
    gemm_units<W8a8Format, true>(pool, problems, w, epi);
  } else {
    gemm_units<W8a8Format>(pool, problems, w, epi);
  }
}

}  // namespace cosy::cpu

#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "core/kv_pool.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu_backend.h"
#include "kernels/gemm.h"
#include "kernels/packed_weight.h"
#include "kernels/reference.h"
#include "kernels/test_util.h"

namespace cosy {
namespace {

using testing::dense_seq;
using testing::max_abs_diff;
using testing::random_vector;
using testing::rounded_to_bf16;

AttentionArgs heads_args(int64_t heads, int64_t kv_heads, int64_t hd,
                         MaskKind mask = MaskKind::None, int64_t chunk = 0) {
  AttentionArgs a;
  a.num_heads = heads;
  a.num_kv_heads = kv_heads;
  a.head_dim = hd;
  a.mask = mask;
  a.chunk = chunk;
  return a;
}

// Several sequences of different lengths share one paged cache; one batched call must
// equal a dense reference per sequence, for every mask kind and with GQA.
TEST(Attention, PagedBatchMatchesDenseReferencePerSequence) {
  ThreadPool pool(2);
  auto backend = cpu::create_cpu_backend(2);
  auto stream = backend->create_stream();
  const int64_t heads = 14, kv_heads = 2, hd = 64, block = 16;
  PagedKvPool cache(*backend, {1, kv_heads, hd, block, 64});
  struct SeqData {
    int64_t q_len, kv_len;
    std::vector<float> q, k, v, bias;
    PagedKvPool::SeqId id;
  };
  std::vector<SeqData> seqs;
  const std::pair<int64_t, int64_t> shapes[] = {{1, 50}, {7, 7}, {30, 95}, {1, 1}};
  uint32_t seed = 40;
  for (auto [q_len, kv_len] : shapes) {
    SeqData s;
    s.q_len = q_len;
    s.kv_len = kv_len;
    s.q = random_vector(size_t(q_len * heads * hd), seed++);
    s.k = random_vector(size_t(kv_len * kv_heads * hd), seed++);
    s.v = random_vector(size_t(kv_len * kv_heads * hd), seed++);
    s.bias = random_vector(size_t(heads * q_len * kv_len), seed++);
    s.id = cache.create();
    // Appended in two pieces, as prefill then decode would.
    const int64_t first = kv_len / 2, row = kv_heads * hd;
    cache.reserve(s.id, first);
    cache.write(*stream, s.id, 0, 0, s.k.data(), s.v.data(), first, row);
    cache.commit(s.id, first);
    cache.reserve(s.id, kv_len - first);
    cache.write(*stream, s.id, 0, first, s.k.data() + first * row, s.v.data() + first * row,
                kv_len - first, row);
    cache.commit(s.id, kv_len - first);
    seqs.push_back(std::move(s));
  }
  for (MaskKind mask : {MaskKind::None, MaskKind::Causal, MaskKind::ChunkCausal}) {
    for (bool with_bias : {false, true}) {
      AttentionArgs a = heads_args(heads, kv_heads, hd, mask, 25);
      a.k_pool = cache.k_slab(0);
      a.v_pool = cache.v_slab(0);
      a.block_size = block;
      std::vector<std::vector<float>> outs;
      std::vector<AttentionSeq> batch;
      for (auto& s : seqs) {
        outs.emplace_back(s.q.size());
        batch.push_back({s.q.data(), s.q_len, s.kv_len - s.q_len, cache.block_table(s.id), s.kv_len,
                         with_bias ? s.bias.data() : nullptr, outs.back().data()});
      }
      cpu::attention(pool, batch, a);
      for (size_t i = 0; i < seqs.size(); ++i) {
        const auto& s = seqs[i];
        const auto expect =
            ref::attention(s.q.data(), s.q_len, s.kv_len - s.q_len, s.k.data(), s.v.data(),
                           s.kv_len, with_bias ? s.bias.data() : nullptr, a);
        EXPECT_LT(max_abs_diff(outs[i].data(), expect.data(), expect.size()), 1e-5)
            << "mask " << int(mask) << " bias " << with_bias << " seq " << i;
      }
    }
  }
}

// Dense caller-owned keys with the conformer's relative-position term: queries in the
// middle of a stream (q_pos0 > 0) against a chunk-causal mask, as incremental streaming
// runs them, must equal the dense reference.
TEST(Attention, DenseKeysWithRelativePositionsMatchReference) {
  ThreadPool pool(2);
  const int64_t heads = 4, hd = 16, kv_len = 75, q_len = 25, pos0 = 50;
  const int64_t rel_rows = 2 * kv_len - 1, rel_zero = kv_len - 1;
  const auto q = random_vector(size_t(q_len * heads * hd), 1);
  const auto q_rel = random_vector(size_t(q_len * heads * hd), 2);
  const auto k = random_vector(size_t(kv_len * heads * hd), 3);
  const auto v = random_vector(size_t(kv_len * heads * hd), 4);
  const auto rel = random_vector(size_t(rel_rows * heads * hd), 5);
  for (MaskKind mask : {MaskKind::None, MaskKind::ChunkCausal}) {
    AttentionArgs a;
    a.num_heads = a.num_kv_heads = heads;
    a.head_dim = hd;
    a.mask = mask;
    a.chunk = 25;
    a.rel_table = rel.data();
    a.rel_zero = rel_zero;
    std::vector<float> out(q.size());
    AttentionSeq s = dense_seq(q, q_len, pos0, kv_len, k, v, out.data());
    s.q_rel = q_rel.data();
    cpu::attention(pool, {&s, 1}, a);
    const auto expect =
        ref::attention(q.data(), q_len, pos0, k.data(), v.data(), kv_len, nullptr, a, q_rel.data());
    EXPECT_LT(max_abs_diff(out.data(), expect.data(), expect.size()), 1e-5) << int(mask);
    // Without the relative term the output must differ: the term is really applied.
    const auto plain =
        ref::attention(q.data(), q_len, pos0, k.data(), v.data(), kv_len, nullptr, a);
    EXPECT_GT(max_abs_diff(out.data(), plain.data(), plain.size()), 1e-3);
  }
}

// The tiled path (dense keys, no relative term, head size a multiple of 16): every mask,
// GQA, query blocks with tails, keys with a row stride, against the reference. 260
// queries make two tasks per head, each packing its keys once for several blocks.
// The first `width` values of each of `rows` rows `ld` apart, packed.
std::vector<float> unpadded(const std::vector<float>& x, int64_t rows, int64_t ld, int64_t width) {
  std::vector<float> out;
  for (int64_t j = 0; j < rows; ++j)
    out.insert(out.end(), x.begin() + j * ld, x.begin() + j * ld + width);
  return out;
}

TEST(Attention, TiledDensePathMatchesReference) {
  ThreadPool pool(2);
  for (const auto& [hd, q_len] :
       {std::pair<int64_t, int64_t>{64, 53}, {32, 53}, {16, 53}, {64, 260}}) {
    const int64_t heads = 4, kv_heads = 2, pos0 = 78, kv_len = pos0 + q_len;
    const int64_t ld_kv = kv_heads * hd + 8;  // keys and values inside wider rows
    const auto q = random_vector(size_t(q_len * heads * hd), 11);
    const auto k = random_vector(size_t(kv_len * ld_kv), 12);
    const auto v = random_vector(size_t(kv_len * ld_kv), 13);
    for (MaskKind mask : {MaskKind::None, MaskKind::Causal, MaskKind::ChunkCausal}) {
      for (const int64_t left : {int64_t(-1), int64_t(1)}) {
        AttentionArgs a = heads_args(heads, kv_heads, hd, mask, 50);
        a.left_chunks = left;
        a.ld_kv = ld_kv;
        std::vector<float> out(q.size(), 7.0f);
        AttentionSeq s = dense_seq(q, q_len, pos0, kv_len, k, v, out.data());
        cpu::attention(pool, {&s, 1}, a);
        // The reference takes packed rows: drop the padding.
        const auto kp = unpadded(k, kv_len, ld_kv, kv_heads * hd);
        const auto vp = unpadded(v, kv_len, ld_kv, kv_heads * hd);
        AttentionArgs packed = a;
        packed.ld_kv = 0;
        const auto expect =
            ref::attention(q.data(), q_len, pos0, kp.data(), vp.data(), kv_len, nullptr, packed);
        EXPECT_LT(max_abs_diff(out.data(), expect.data(), expect.size()), 1e-5)
            << "hd " << hd << " queries " << q_len << " mask " << int(mask) << " left " << left;
      }
    }
  }
}

// bf16 products (a bf16 flow's attention): Q, K and V rounded to bf16 give float32
// attention up to the rounding of P to bf16 (2^-9 of each weight); against the unrounded
// operands the difference is visible but small. Every mask, GQA, strided keys, and tasks
// of several blocks. On AVX512_BF16, and on AMX tiles where the CPU has them.
TEST(Attention, Bf16ProductsStayCloseToTheRoundedReference) {
  if (!cpu::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  ThreadPool pool(2);
  const testing::AmxRestore restore;
  for (const bool amx : {false, true}) {
    if (amx && !cpu::cpu_has_amx_bf16()) continue;
    cpu::set_amx(amx);
    for (const auto& [hd, q_len] :
         {std::pair<int64_t, int64_t>{64, 53}, {32, 53}, {16, 53}, {64, 260}}) {
      const int64_t heads = 4, kv_heads = 2, pos0 = 78, kv_len = pos0 + q_len;
      const int64_t ld_kv = kv_heads * hd + 8;
      const auto q = random_vector(size_t(q_len * heads * hd), 21);
      const auto k = random_vector(size_t(kv_len * ld_kv), 22);
      const auto v = random_vector(size_t(kv_len * ld_kv), 23);
      const auto kp = unpadded(k, kv_len, ld_kv, kv_heads * hd);
      const auto vp = unpadded(v, kv_len, ld_kv, kv_heads * hd);
      const auto qr = rounded_to_bf16(q), kr = rounded_to_bf16(kp), vr = rounded_to_bf16(vp);
      for (MaskKind mask : {MaskKind::None, MaskKind::Causal, MaskKind::ChunkCausal}) {
        AttentionArgs a = heads_args(heads, kv_heads, hd, mask, 50);
        a.ld_kv = ld_kv;
        a.bf16 = true;
        std::vector<float> out(q.size(), 7.0f);
        AttentionSeq s = dense_seq(q, q_len, pos0, kv_len, k, v, out.data());
        cpu::attention(pool, {&s, 1}, a);
        AttentionArgs packed = a;
        packed.ld_kv = 0;
        packed.bf16 = false;
        const auto rounded =
            ref::attention(qr.data(), q_len, pos0, kr.data(), vr.data(), kv_len, nullptr, packed);
        const auto exact =
            ref::attention(q.data(), q_len, pos0, kp.data(), vp.data(), kv_len, nullptr, packed);
        EXPECT_LT(max_abs_diff(out.data(), rounded.data(), rounded.size()), 3e-3)
            << "hd " << hd << " queries " << q_len << " mask " << int(mask);
        const double off = max_abs_diff(out.data(), exact.data(), exact.size());
        EXPECT_GT(off, 1e-5) << "no bf16 rounding seen";
        EXPECT_LT(off, 2e-2);
      }
    }
  }
  // A relative term or a bias has no bf16 path.
  AttentionArgs a = heads_args(2, 2, 16, MaskKind::None, 0);
  a.bf16 = true;
  const auto q = random_vector(32, 1), kv = random_vector(64, 2), bias = random_vector(4, 3);
  std::vector<float> out(32);
  AttentionSeq s = dense_seq(q, 1, 1, 2, kv, kv, out.data());
  s.bias = bias.data();
  EXPECT_THROW(cpu::attention(pool, {&s, 1}, a), Error);
}

// Keys in two pieces (a shared prefix, then a sequence's own rows) give exactly what the
// same keys in one piece give, on the tiled path and on the row path (with a bias), with
// the split before, inside and after the keys a block reads, and all keys shared.
TEST(Attention, SharedKeyPrefixEqualsOnePiece) {
  ThreadPool pool(2);
  const int64_t heads = 4, kv_heads = 2, hd = 32, kv_len = 150, q_len = 70, pos0 = 80;
  const int64_t row = kv_heads * hd;
  const auto q = random_vector(size_t(q_len * heads * hd), 21);
  const auto k = random_vector(size_t(kv_len * row), 22);
  const auto v = random_vector(size_t(kv_len * row), 23);
  const auto bias = random_vector(size_t(heads * q_len * kv_len), 24);
  for (const bool with_bias : {false, true}) {
    for (MaskKind mask : {MaskKind::None, MaskKind::ChunkCausal}) {
      const AttentionArgs a = heads_args(heads, kv_heads, hd, mask, 50);
      std::vector<float> expect(q.size());
      AttentionSeq whole = dense_seq(q, q_len, pos0, kv_len, k, v, expect.data());
      whole.bias = with_bias ? bias.data() : nullptr;
      cpu::attention(pool, {&whole, 1}, a);
      for (const int64_t split : {int64_t(1), int64_t(50), int64_t(100), int64_t(149), kv_len}) {
        AttentionSeq parts = whole;
        std::vector<float> out(q.size(), 3.0f);
        parts.out = out.data();
        parts.k_shared = k.data();
        parts.v_shared = v.data();
        parts.shared_len = split;
        parts.k = split < kv_len ? k.data() + split * row : nullptr;
        parts.v = split < kv_len ? v.data() + split * row : nullptr;
        cpu::attention(pool, {&parts, 1}, a);
        EXPECT_LT(max_abs_diff(out.data(), expect.data(), expect.size()), 1e-5)
            << "bias " << with_bias << " mask " << int(mask) << " split " << split;
      }
    }
  }
  AttentionSeq bad;
  bad.q = q.data();
  bad.q_len = 1;
  bad.kv_len = 10;
  bad.shared_len = 11;
  std::vector<float> out(size_t(heads * hd));
  bad.out = out.data();
  EXPECT_THROW(cpu::attention(pool, {&bad, 1}, heads_args(heads, kv_heads, hd)), Error);
}

// Keys and values stored as IEEE half (a stream's cache in half the memory) give what
// the same rounded values give in fp32, in one piece or with a shared prefix.
TEST(Attention, HalfPrecisionKeysEqualTheirRoundedValues) {
  ThreadPool pool(2);
  const int64_t heads = 4, kv_heads = 2, hd = 32, kv_len = 150, q_len = 70, pos0 = 80;
  const int64_t row = kv_heads * hd;
  const auto q = random_vector(size_t(q_len * heads * hd), 31);
  auto k = random_vector(size_t(kv_len * row), 32);
  auto v = random_vector(size_t(kv_len * row), 33);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k16[i] = float_to_half(k[i]);
    v16[i] = float_to_half(v[i]);
    k[i] = half_to_float(k16[i]);
    v[i] = half_to_float(v16[i]);
  }
  for (MaskKind mask : {MaskKind::None, MaskKind::ChunkCausal}) {
    const AttentionArgs a = heads_args(heads, kv_heads, hd, mask, 50);
    std::vector<float> expect(q.size());
    AttentionSeq rounded = dense_seq(q, q_len, pos0, kv_len, k, v, expect.data());
    cpu::attention(pool, {&rounded, 1}, a);
    for (const int64_t split : {int64_t(0), int64_t(100), kv_len}) {
      std::vector<float> out(q.size(), 3.0f);
      AttentionSeq half = dense_seq(q, q_len, pos0, kv_len, k, v, out.data());
      half.k = half.v = nullptr;
      half.kv_half = true;
      half.shared_len = split;
      half.k16_shared = k16.data();
      half.v16_shared = v16.data();
      half.k16 = split < kv_len ? k16.data() + split * row : nullptr;
      half.v16 = split < kv_len ? v16.data() + split * row : nullptr;
      cpu::attention(pool, {&half, 1}, a);
      EXPECT_LT(max_abs_diff(out.data(), expect.data(), expect.size()), 1e-5)
          << "mask " << int(mask) << " split " << split;
    }
  }
  // Half keys are for the tiled path only.
  std::vector<float> out(q.size());
  AttentionSeq bad = dense_seq(q, q_len, pos0, kv_len, k, v, out.data());
  bad.kv_half = true;
  bad.k16 = k16.data();
  bad.v16 = v16.data();
  std::vector<float> bias(size_t(heads * q_len * kv_len));
  bad.bias = bias.data();
  EXPECT_THROW(cpu::attention(pool, {&bad, 1}, heads_args(heads, kv_heads, hd)), Error);
}

TEST(Attention, ChunkMaskRule) {
  AttentionArgs a;
  a.mask = MaskKind::ChunkCausal;
  a.chunk = 25;
  EXPECT_EQ(cpu::visible_keys(a, 0, 100).end, 25);
  EXPECT_EQ(cpu::visible_keys(a, 24, 100).end, 25);
  EXPECT_EQ(cpu::visible_keys(a, 25, 100).end, 50);
  EXPECT_EQ(cpu::visible_keys(a, 60, 55).end, 55);
  a.left_chunks = 1;
  EXPECT_EQ(cpu::visible_keys(a, 60, 100).begin, 25);
}

TEST(KvPool, ReleaseReturnsBlocksAndExhaustionChangesNothing) {
  auto backend = cpu::create_cpu_backend(1);
  auto stream = backend->create_stream();
  PagedKvPool cache(*backend, {2, 1, 4, 8, 4});
  const auto rows = random_vector(size_t{40} * 4, 1);
  auto a = cache.create();
  cache.reserve(a, 20);
  for (int64_t layer = 0; layer < 2; ++layer)
    cache.write(*stream, a, layer, 0, rows.data(), rows.data(), 20, 4);
  cache.commit(a, 20);
  EXPECT_EQ(cache.free_blocks(), 1);
  EXPECT_EQ(cache.sequence_bytes(a), 3 * cache.geometry().bytes_per_block());
  auto b = cache.create();
  EXPECT_THROW(cache.reserve(b, 9), std::exception);
  EXPECT_EQ(cache.free_blocks(), 1);  // a failed reserve takes nothing
  EXPECT_THROW(cache.write(*stream, b, 0, 0, rows.data(), rows.data(), 1, 4), std::exception);
  EXPECT_THROW(cache.commit(b, 1), std::exception);
  cache.release(a);
  cache.release(a);  // idempotent
  EXPECT_EQ(cache.free_blocks(), 4);
  cache.reserve(b, 32);
  cache.commit(b, 32);
  EXPECT_EQ(cache.length(b), 32);
  EXPECT_THROW(cache.reserve(12345, 1), std::exception);
}

// Rows written with a row stride (straight out of a fused qkv projection) land where a
// block table says, across block boundaries.
TEST(KvPool, StridedWritesLandInTheirBlocks) {
  auto backend = cpu::create_cpu_backend(1);
  auto stream = backend->create_stream();
  PagedKvPool cache(*backend, {1, 2, 3, 4, 8});
  const int64_t row = 6, ld = 10, n = 11;
  const auto src = random_vector(size_t(n * ld), 7);
  auto filler = cache.create();  // takes block 0, so the sequence's blocks are not 0..k
  cache.reserve(filler, 1);
  auto s = cache.create();
  cache.reserve(s, n);
  cache.write(*stream, s, 0, 0, src.data(), src.data() + 1, 5, ld);
  cache.write(*stream, s, 0, 5, src.data() + 5 * ld, src.data() + 5 * ld + 1, n - 5, ld);
  const int32_t* table = cache.block_table(s);
  for (int64_t p = 0; p < n; ++p) {
    const float* k = cache.k_slab(0) + (int64_t{table[p / 4]} * 4 + p % 4) * row;
    const float* v = cache.v_slab(0) + (int64_t{table[p / 4]} * 4 + p % 4) * row;
    for (int64_t c = 0; c < row; ++c) {
      EXPECT_EQ(k[c], src[size_t(p * ld + c)]);
      EXPECT_EQ(v[c], src[size_t(p * ld + 1 + c)]);
    }
  }
}

// A fork shares the source's full blocks and copies its partial last one: both sequences
// read the same prefix rows, append on their own, and a shared block goes back to the
// pool only when the last sequence holding it is released.
TEST(KvPool, ForkSharesWholeBlocksAndCopiesThePartialOne) {
  auto backend = cpu::create_cpu_backend(1);
  auto stream = backend->create_stream();
  const KvPoolGeometry g{2, 1, 4, 4, 8};  // 2 layers, rows of 4, blocks of 4 rows
  PagedKvPool cache(*backend, g);
  const auto rows = random_vector(size_t{10} * 4, 3);
  const auto src = cache.create();
  cache.reserve(src, 10);
  for (int64_t layer = 0; layer < 2; ++layer)
    cache.write(*stream, src, layer, 0, rows.data(), rows.data(), 10, 4);
  cache.commit(src, 10);
  EXPECT_EQ(cache.free_blocks(), 5);
  const auto fork = cache.fork(*stream, src, 6);  // block 0 shared, rows 4-5 copied
  EXPECT_EQ(cache.length(fork), 6);
  EXPECT_EQ(cache.free_blocks(), 4);
  const int32_t* ts = cache.block_table(src);
  const int32_t* tf = cache.block_table(fork);
  EXPECT_EQ(tf[0], ts[0]);
  EXPECT_NE(tf[1], ts[1]);
  for (int64_t layer = 0; layer < 2; ++layer) {
    for (int64_t p = 0; p < 6; ++p) {
      const float* k = cache.k_slab(layer) + (int64_t{tf[p / 4]} * 4 + p % 4) * 4;
      for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(k[c], rows[size_t(p * 4 + c)]);
    }
  }
  // The fork appends into its own copy; the shared block refuses writes.
  cache.reserve(fork, 2);
  cache.write(*stream, fork, 0, 6, rows.data(), rows.data(), 2, 4);
  EXPECT_THROW(cache.write(*stream, fork, 0, 0, rows.data(), rows.data(), 1, 4), Error);
  EXPECT_THROW(cache.fork(*stream, src, 11), Error);
  cache.release(src);
  EXPECT_EQ(cache.free_blocks(), 6);  // blocks 1 and 2 of src; block 0 is still the fork's
  cache.release(fork);
  EXPECT_EQ(cache.free_blocks(), 8);
  // A fork of whole blocks needs no free block.
  const auto a = cache.create();
  cache.reserve(a, 32);
  cache.commit(a, 32);
  const auto b = cache.fork(*stream, a, 8);
  EXPECT_EQ(cache.length(b), 8);
  EXPECT_THROW(cache.fork(*stream, a, 9), Error);  // its partial block would need one
  cache.release(a);
  EXPECT_EQ(cache.free_blocks(), 6);
}

// A rollback's truncate returns the blocks past the rows kept, and a shared block the
// sequence would write into next becomes its own copy, so the fork's source is untouched.
TEST(KvPool, TruncateFreesTheTailAndUnsharesTheBlockWrittenNext) {
  auto backend = cpu::create_cpu_backend(1);
  auto stream = backend->create_stream();
  PagedKvPool cache(*backend, {1, 1, 4, 4, 8});
  const auto rows = random_vector(size_t{12} * 4, 5);
  const auto src = cache.create();
  cache.reserve(src, 12);
  cache.write(*stream, src, 0, 0, rows.data(), rows.data(), 12, 4);
  cache.commit(src, 12);
  const auto fork = cache.fork(*stream, src, 8);  // blocks 0 and 1 shared
  cache.reserve(fork, 3);
  cache.write(*stream, fork, 0, 8, rows.data(), rows.data(), 3, 4);
  cache.commit(fork, 3);
  EXPECT_EQ(cache.free_blocks(), 4);
  cache.truncate(*stream, fork, 6);  // drops its own block 2, copies shared block 1
  EXPECT_EQ(cache.length(fork), 6);
  EXPECT_EQ(cache.free_blocks(), 4);  // one returned, one taken for the copy
  EXPECT_NE(cache.block_table(fork)[1], cache.block_table(src)[1]);
  EXPECT_EQ(cache.block_table(fork)[0], cache.block_table(src)[0]);
  const float* k = cache.k_slab(0) + int64_t{cache.block_table(fork)[1]} * 16;
  for (int64_t c = 0; c < 8; ++c) EXPECT_EQ(k[c], rows[size_t(16 + c)]);  // rows 4 and 5
  const auto more = random_vector(size_t{2} * 4, 6);
  cache.reserve(fork, 2);
  cache.write(*stream, fork, 0, 6, more.data(), more.data(), 2, 4);  // its own block now
  const float* s = cache.k_slab(0) + int64_t{cache.block_table(src)[1]} * 16 + 8;
  for (int64_t c = 0; c < 8; ++c) EXPECT_EQ(s[c], rows[size_t(24 + c)]);  // src unchanged
  cache.truncate(*stream, fork, 0);
  EXPECT_EQ(cache.length(fork), 0);
  EXPECT_THROW(cache.truncate(*stream, fork, 1), Error);
  cache.release(fork);
  cache.release(src);
  EXPECT_EQ(cache.free_blocks(), 8);
}

}  // namespace
}  // namespace cosy

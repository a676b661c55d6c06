#!/usr/bin/env bash
# The golden tests with every GEMM kernel the tuner can choose forced on every shape
# (COSY_GEMM_KERNEL): a tuned machine must reproduce the official numerics as the default
# kernel does. The default kernel's run is the golden tests' own ctest entries.
# Usage: golden_each_kernel_test.sh COSYSERVE GOLDEN_TEST GOLDEN_CV3_TEST
set -euo pipefail
cosyserve=$1 golden=$2 golden_cv3=$3
kernels=$("$cosyserve" tune --list-kernels)
ran=0
for kernel in $kernels; do
  [ "$kernel" = avx2 ] && continue
  echo "=== COSY_GEMM_KERNEL=$kernel"
  COSY_GEMM_KERNEL=$kernel "$golden" --gtest_brief=1
  # The 24 s stream repeats the chunk-by-chunk tests' numerics for minutes under each kernel.
  COSY_GEMM_KERNEL=$kernel "$golden_cv3" --gtest_brief=1 \
    --gtest_filter='-GoldenCv3E2e.IncrementalEqualsRecomputingOverALongStream'
  ran=$((ran + 1))
done
if [ "$ran" = 0 ]; then
  echo "this CPU runs only the default kernel ($kernels): nothing more to run"
fi

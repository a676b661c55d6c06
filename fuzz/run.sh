#!/usr/bin/env bash
# Builds the fuzzers with clang and runs each for FUZZ_SECONDS (default 30) from a corpus
# seeded with the fixtures. Crashes are written to build-fuzz/artifacts/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
GOLDEN="${COSY_GOLDEN_DIR:-$(pwd)/../shared/golden}"
SECONDS_EACH="${FUZZ_SECONDS:-30}"
BUILD=build-fuzz

CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOSY_BUILD_FUZZERS=ON -DCOSY_BUILD_TESTS=OFF -DCOSY_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

CORPUS="$BUILD/corpus"
rm -rf "$CORPUS" && mkdir -p "$BUILD/artifacts"
ASAN_OPTIONS=detect_leaks=1 "$BUILD/fuzz/make_seeds" "$GOLDEN" "$CORPUS"

export COSY_TOKENIZER_DIR="$GOLDEN/tokenizer/model"
for target in zip pickle yaml npy safetensors tokenizer speech_request onnx prompt_audio form_data ws_session; do
  echo "fuzz_${target}: ${SECONDS_EACH}s"
  "$BUILD/fuzz/fuzz_${target}" "$CORPUS/$target" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/${target}-" >"$BUILD/fuzz_${target}.log" 2>&1 || true
  grep -E "^(stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)|runtime error" "$BUILD/fuzz_${target}.log" || true
  if ! grep -q "^stat::number_of_executed_units" "$BUILD/fuzz_${target}.log"; then
    echo "fuzz_${target}: did not run:" && tail -5 "$BUILD/fuzz_${target}.log"
    exit 1
  fi
  if ls "$BUILD/artifacts/${target}-"* >/dev/null 2>&1 || grep -qE "runtime error|==ERROR" "$BUILD/fuzz_${target}.log"; then
    echo "fuzz_${target}: found a failing input:" "$BUILD/artifacts/${target}-"*
    exit 1
  fi
done
echo "fuzzing: all targets clean"

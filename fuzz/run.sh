#!/usr/bin/env bash
# Builds the fuzzers with clang and runs each for FUZZ_SECONDS (default 30), one per core
# at a time, from a corpus seeded with the fixtures. Crashes are written to build-fuzz/artifacts/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
GOLDEN="${COSY_GOLDEN_DIR:-$(pwd)/../shared/golden}"
SECONDS_EACH="${FUZZ_SECONDS:-30}"
BUILD=build-fuzz

CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
  -DCOSY_BUILD_FUZZERS=ON -DCOSY_BUILD_TESTS=OFF -DCOSY_BUILD_BENCH=OFF >/dev/null
TARGETS=(zip pickle yaml npy safetensors tokenizer speech_request onnx prompt_audio form_data ws_session)
# The fuzzers and the seed maker only (not the cosyserve tool).
cmake --build "$BUILD" -j"$(nproc)" --target make_seeds "${TARGETS[@]/#/fuzz_}"

CORPUS="$BUILD/corpus"
rm -rf "$CORPUS" && mkdir -p "$BUILD/artifacts"
ASAN_OPTIONS=detect_leaks=1 "$BUILD/fuzz/make_seeds" "$GOLDEN" "$CORPUS"

export COSY_TOKENIZER_DIR="$GOLDEN/tokenizer/model"
export BUILD CORPUS SECONDS_EACH
# One target's run; exits non-zero when it did not run or found a failing input.
fuzz_one() {
  local target="$1" log="$BUILD/fuzz_$1.log"
  "$BUILD/fuzz/fuzz_${target}" "$CORPUS/$target" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/${target}-" >"$log" 2>&1 || true
  echo "fuzz_${target} (${SECONDS_EACH}s): $(grep -E "^stat::number_of_executed_units" "$log" || echo 'no stats')"
  grep -E "^(==[0-9]+==ERROR|SUMMARY)|runtime error" "$log" || true
  if ! grep -q "^stat::number_of_executed_units" "$log"; then
    echo "fuzz_${target}: did not run:" && tail -5 "$log"
    return 1
  fi
  if ls "$BUILD/artifacts/${target}-"* >/dev/null 2>&1 || grep -qE "runtime error|==ERROR" "$log"; then
    echo "fuzz_${target}: found a failing input:" "$BUILD/artifacts/${target}-"*
    return 1
  fi
}
export -f fuzz_one
# Each fuzzer is one process on one core: as many at once as there are cores.
if ! printf '%s\n' "${TARGETS[@]}" | xargs -P "$(nproc)" -I{} bash -c 'fuzz_one {}'; then
  echo "fuzzing: a target failed (above)"
  exit 1
fi
echo "fuzzing: all targets clean"

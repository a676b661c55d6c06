#!/usr/bin/env bash
# Sets up, builds and runs every unit and end-to-end test (the README's test command).
# Tests that need the golden fixtures (COSY_GOLDEN_DIR, default ../shared/golden) skip and
# say so when they are missing; CI sets COSY_REQUIRE_FIXTURES=1 so that they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCOSY_BUILD_TESTS=ON -DCOSY_BUILD_BENCH=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"

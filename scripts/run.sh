#!/usr/bin/env bash
# Sets up, builds and runs the main job: inspect a CosyVoice2 model folder
# (default: the fixture model in ../shared/golden/model, or pass a folder).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-${COSY_GOLDEN_DIR:-../shared/golden}/model}"
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
build/cosyserve inspect --model "$MODEL"

#!/usr/bin/env bash
# Sets up, builds and runs the main job: text → speech with `cosyserve synth`.
#   scripts/run.sh                      # a tiny random-weight model (made here): noise
#   scripts/run.sh /path/to/CosyVoice2-0.5B [VOICE]   # a real folder: speech
# Random weights make noise, not speech. A real CosyVoice2-0.5B folder needs a zero-shot
# voice in its spk2info.pt (the official add_zero_shot_spk + save_spkinfo write one).
# Needs nothing beside the clone: no fixtures, no environment variables.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCOSY_BUILD_TESTS=OFF -DCOSY_BUILD_BENCH=OFF
cmake --build build -j"$(nproc)" --target cosyserve
MODEL="${1:-}"
VOICE_ARGS=()
if [ -n "${2:-}" ]; then VOICE_ARGS=(--voice "$2"); fi
if [ -z "$MODEL" ]; then
  MODEL=build/demo-model
  build/cosyserve make-model --preset tiny --seed 1 --out "$MODEL"
fi
TEXT="Hello! This is cosyserve, a text to speech engine for CosyVoice2 models."
build/cosyserve synth --model "$MODEL" "${VOICE_ARGS[@]}" --text "$TEXT" --out build/demo.wav
build/cosyserve synth --model "$MODEL" "${VOICE_ARGS[@]}" --text "$TEXT" --stream --first-hop 15 \
  --out build/demo-stream.wav
echo "audio: build/demo.wav, build/demo-stream.wav"

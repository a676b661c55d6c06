#!/usr/bin/env bash
# Installs every Debian (bookworm) package cosyserve needs to build, test and fuzz.
# Idempotent: when everything is present it only runs dpkg queries (well under a second).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang-14 libclang-rt-14-dev          # libFuzzer targets and the fuzz build
  libgtest-dev libgmock-dev
  libcli11-dev                         # CLI subcommands
  nlohmann-json3-dev                   # config.json, safetensors headers
  libyaml-dev                          # YAML 1.1 parser under the hyperpyyaml reader
  zlib1g-dev                           # CRC-32 and deflate for zip archives
  libicu-dev                           # Unicode properties and NFC for the tokenizer
  libsndfile1-dev                      # WAV/FLAC output
  libbenchmark-dev                     # Google Benchmark kernel programs
  libopenblas-dev libblis-dev libdnnl-dev  # GEMM baselines in the kernel benchmark (not linked by the engine)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

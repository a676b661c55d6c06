#!/usr/bin/env bash
# Installs the Debian (bookworm) packages cosyserve needs.
#   scripts/setup.sh         what building and running need (the main job, scripts/run.sh)
#   scripts/setup.sh --dev   also what the tests, benchmarks and fuzzers need (scripts/test.sh)
# Idempotent: when everything is present it only runs dpkg queries (well under a second).
set -euo pipefail

RUN_PACKAGES=(
  build-essential cmake pkg-config
  libcli11-dev                         # CLI subcommands
  nlohmann-json3-dev                   # config.json, safetensors headers
  libyaml-dev                          # YAML 1.1 parser under the hyperpyyaml reader
  zlib1g-dev                           # deflate for zip archives, CRC-32 combining
  libisal-dev                          # fast CRC-32 of every checkpoint record
  libicu-dev                           # Unicode properties and NFC for the tokenizer
  libsndfile1-dev                      # WAV/FLAC output; Ogg/Opus for the server
  libmp3lame-dev                       # MP3 for the server
  libboost1.81-dev                     # Beast + Asio: the server's HTTP and WebSocket
  libssl-dev                           # base64 for SSE audio (and TLS later)
  libprotobuf-dev protobuf-compiler    # reading ONNX files (protobuf)
  libonnx-dev                          # onnx.proto, the schema compiled at build time
  libfftw3-dev                         # spectra of the voice frontend (and the golden tests)
  libgmime-3.0-dev                     # multipart/form-data uploads (POST /v1/audio/voices)
)
DEV_PACKAGES=(
  ninja-build
  clang-14 libclang-rt-14-dev          # libFuzzer targets and the fuzz build
  libgtest-dev libgmock-dev            # unit and end-to-end tests
  bsdutils                             # `script`: a terminal for the progress-line test
  curl                                 # a real HTTP client in the server tests
  chromium                             # a real browser for the playground test (driven by playwright-core)
  nginx haproxy                        # the load balancers deploy/ configures, run by the balancer tests
  libbenchmark-dev                     # Google Benchmark kernel programs
  libopenblas-dev libblis-dev libdnnl-dev  # GEMM baselines in the kernel benchmark (not linked by the engine)
)

PACKAGES=("${RUN_PACKAGES[@]}")
case "${1:-}" in
  --dev)
    PACKAGES+=("${DEV_PACKAGES[@]}")
    # Node.js and npm run the real client programs (tests/clients). A machine that has them
    # (Debian's or another build) keeps its own; otherwise Debian's.
    if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi
    ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--dev]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Installing nginx or haproxy must not start a system service (on port 80, say): the tests
  # run their own on loopback ports they choose. policy-rc.d is Debian's switch for that.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --dev: the real client programs the server tests use (the OpenAI SDK, ws, a Prometheus
# parser, Playwright's driver for Debian's Chromium), exactly as tests/clients/package-lock.json
# pins them. playwright-core downloads no browser.
if [[ "${1:-}" == "--dev" ]]; then
  clients="$(dirname "$0")/../tests/clients"
  if [[ ! -f "$clients/node_modules/.package-lock.json" ||
        "$clients/package-lock.json" -nt "$clients/node_modules/.package-lock.json" ]]; then
    echo "setup: npm ci in tests/clients"
    npm ci --prefix "$clients" --no-audit --no-fund --loglevel=error
  fi
fi

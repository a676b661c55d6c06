#!/usr/bin/env bash
# Soak test of `cosyserve serve`: CONCURRENCY clients (curl loops) request speech without
# pause for SECONDS, while the server's RSS is sampled every 10 s. Every PAUSE_EVERY seconds
# (300) the clients hold back until the server runs no stream, and RSS is read at that idle
# moment, after the server's memory trimmer has run: then the live memory is the same each
# time, and growth is a leak. (Under load RSS follows the streams' live memory up and down,
# which two instants cannot tell from a leak.) Passes when no request failed and the last
# idle RSS is less than 1 % above the second (the first is warm-up).
# A program, not a test: it runs for as long as it is told. Loopback only.
#   bench/serve_soak.sh [SECONDS=1800] [CONCURRENCY=32] [MODEL_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL="${1:-1800}"
CONCURRENCY="${2:-32}"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
MODEL="${3:-$work/model}"
if [[ ! -d "$MODEL" ]]; then build/cosyserve make-model --preset tiny --seed 1 --out "$MODEL" 2>/dev/null; fi

build/cosyserve serve --model "$MODEL" --port 0 --max-streams "$CONCURRENCY" --access-log off \
  2> "$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/server.log" | grep -o '[0-9]*$')
[[ -n "$port" ]] || { echo "the server did not start"; cat "$work/server.log"; exit 1; }
VOICE=$(curl -s "http://127.0.0.1:$port/v1/audio/voices" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)

end=$((SECONDS + SECONDS_TOTAL))
client() {  # one client's loop: texts of mixed lengths, every format in turn
  local i=0 ok=0 failed=0 formats=(pcm wav flac opus mp3)
  while ((SECONDS < end)); do
    while [[ -f "$work/pause" ]]; do sleep 0.5; done
    local n=$((1 + i % 2)) text=""
    # Random weights speak up to 20 speech tokens per text token: short texts keep each
    # utterance to a few seconds of audio, so requests turn over many times in the run.
    for _ in $(seq $n); do text+="Hello $i from $1. "; done
    local body="{\"model\":\"cosyvoice2\",\"voice\":\"$VOICE\",\"input\":\"$text\",\"response_format\":\"${formats[$((i % 5))]}\",\"seed\":$i}"
    # A generous client timeout: at 32 streams on 2 cores one request takes minutes.
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 900 -H 'Content-Type: application/json' \
             -d "$body" "http://127.0.0.1:$port/v1/audio/speech")
    local rc=$?
    if ((rc == 0)) && [[ "$code" == 200 ]]; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1)); echo "client $1 request $i: HTTP $code, curl exit $rc" >> "$work/failures"
    fi
    i=$((i + 1))
  done
  echo "$ok $failed" > "$work/client-$1"
}
for c in $(seq "$CONCURRENCY"); do client "$c" & done

running() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^cosyserve_streams_running / {print $2}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
echo "seconds rss_mb"
samples=()
idle=()
next_pause=$((SECONDS + ${PAUSE_EVERY:-300}))
while ((SECONDS < end)); do
  rss=$(rss_kb)
  samples+=("$rss")
  echo "$SECONDS $((rss / 1024))"
  if ((rss / 1024 > ${MAX_RSS_MB:-16000})); then
    echo "RSS over ${MAX_RSS_MB:-16000} MB: stopping"; kill -9 "$server"; echo "soak: FAIL"; exit 1
  fi
  if ((SECONDS >= next_pause)); then
    touch "$work/pause"
    for _ in $(seq 1800); do [[ "$(running)" == "0" ]] && break; sleep 0.5; done
    sleep 12  # the server's trimmer (every 10 s) has run since the last stream ended
    rss=$(rss_kb)
    idle+=("$rss")
    echo "$SECONDS idle $((rss / 1024)) (streams running: $(running))"
    rm -f "$work/pause"
    next_pause=$((SECONDS + ${PAUSE_EVERY:-300}))
  fi
  sleep 10
done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null
ok=0; failed=0
for f in "$work"/client-*; do read -r a b < "$f"; ok=$((ok + a)); failed=$((failed + b)); done
if ((${#idle[@]} < 3)); then echo "too few idle samples (${#idle[@]}): run longer"; exit 1; fi
warm=${idle[1]}
last=${idle[$((${#idle[@]} - 1))]}
growth=$(awk -v a="$warm" -v b="$last" 'BEGIN {printf "%.2f", 100 * (b - a) / a}')
echo "requests: $ok ok, $failed failed; idle RSS $(for r in "${idle[@]}"; do printf '%d ' $((r / 1024)); done)MB; the last against the second: $growth %"
kill -TERM "$server"; wait "$server"
[[ -f "$work/failures" ]] && head -5 "$work/failures"
if ((failed == 0)) && awk -v g="$growth" 'BEGIN {exit !(g < 1)}'; then echo "soak: pass"; else echo "soak: FAIL"; exit 1; fi

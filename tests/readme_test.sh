#!/usr/bin/env bash
# Every command in the README's ```sh blocks runs, as written, from a copy of the repository
# root whose build/ is this build. The two scripts/ commands are what .ci/run itself runs
# (scripts/test.sh is the command that runs this test), so for those this checks that
# .ci/run runs them.
# Usage: readme_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src="$1"
build="$2"
work=$(mktemp -d)
trap 'rm -rf "$work" /tmp/tiny' EXIT
ln -s "$build" "$work/build"

status=0
ran=0
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  if [[ "$line" == scripts/* ]]; then
    if grep -qF "$line" "$src/.ci/run"; then
      echo "ok (run by .ci/run): $line"
    else
      echo "FAIL: README command '$line' is neither run here nor by .ci/run"
      status=1
    fi
    continue
  fi
  if (cd "$work" && timeout 300 bash -c "set -o pipefail; $line") >"$work/log" 2>&1; then
    echo "ok: $line"
    ran=$((ran + 1))
  else
    echo "FAIL: $line"
    tail -20 "$work/log"
    status=1
  fi
done < <(awk '/^```sh$/ {on = 1; next} /^```$/ {on = 0} on' "$src/README.md")

if ((ran == 0)); then
  echo "FAIL: no README command ran"
  status=1
fi
exit $status

#!/usr/bin/env bash
# In a clone with nothing beside it the tests that need fixtures say so and skip; the rest
# pass. Runs each test binary that reads fixtures with COSY_GOLDEN_DIR pointing nowhere.
# Usage: fixtures_missing_test.sh BUILD_DIR
set -uo pipefail
build="$1"
export COSY_GOLDEN_DIR=/nonexistent/cosy-fixtures
export COSY_GOLDEN_CV3_DIR=/nonexistent/cosy-fixtures
unset COSY_REQUIRE_FIXTURES
status=0
check() {  # binary [gtest args]
  local out
  out=$("$@" 2>&1)
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: $* exited $rc without fixtures"; echo "$out" | tail -20; status=1
  elif ! grep -q "fixtures missing: /nonexistent/cosy-fixtures is not a directory" <<<"$out"; then
    echo "FAIL: $* did not say the fixtures are missing"; echo "$out" | tail -20; status=1
  else
    echo "ok: $* ($(grep -c '\[  SKIPPED \]' <<<"$out") skip lines)"
  fi
}
check "$build/tests/golden_test"
check "$build/tests/golden_cv3_test"
check "$build/src/io/io_test"
check "$build/src/model/model_test"
check "$build/src/text/text_test"
check "$build/src/tools/cli_test" --gtest_filter='Cli.InspectPrintsEveryStageOfTheFixtureModel:Cli.VocodeWritesAWavOfTheMelsLength:Cli.SynthOffline*'
# And with fixtures required (CI), their absence fails.
for t in golden_test golden_cv3_test; do
  if COSY_REQUIRE_FIXTURES=1 "$build/tests/$t" >/dev/null 2>&1; then
    echo "FAIL: $t passed without fixtures although COSY_REQUIRE_FIXTURES=1"; status=1
  fi
done
exit $status

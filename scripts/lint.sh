#!/usr/bin/env bash
# clang-format check and clang-tidy (bugprone checks, see .clang-tidy) over the sources.
# Needs a configured build/ (for compile_commands.json).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.h' 'bench/*.cpp' 'fuzz/*.cpp')
clang-format --dry-run --Werror $files
clang-tidy -p build --quiet $(git ls-files 'src/*.cpp' 'bench/*.cpp') 2>/dev/null

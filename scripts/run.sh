#!/usr/bin/env bash
# The main job: installs what is missing (scripts/setup.sh), builds build/ (CMake preset
# "default", the same tree scripts/test.sh uses, so running both builds once), and runs mishkad
# in the foreground with the given arguments. With none: a standalone seed on the defaults
# (node mishka@127.0.0.1:4370, admin HTTP on 127.0.0.1:4380, data in .mnesia/<MISHKA_ENV or dev>,
# cookie in $HOME/.mishka.cookie). Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
#   bash scripts/run.sh --help    every flag (docs/operations.md)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
cmake --preset default
cmake --build --preset default -j "${MISHKA_JOBS:-$(nproc)}"

exec build/tools/mishkad "$@"

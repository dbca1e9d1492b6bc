#!/usr/bin/env bash
# The README's first command: set up, then provision and verify a throwaway local test host.
# Leaves the workspace in ./demo and the sandbox running; `scripts/demo.sh down` removes both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ "${1:-}" = "down" ]; then
  (cd demo && rigforge sandbox down rig1) || true
  rm -rf demo
  exit 0
fi
[ -d demo ] || rigforge init demo
cd demo
rigforge sandbox list | grep -q '^rig1 ' || rigforge sandbox up rig1
rigforge provision --yes
rigforge verify

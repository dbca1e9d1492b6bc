#!/usr/bin/env bash
# The README's second command, and what CI runs: set up, lint, then unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== lint"
ruff check provision tests bench
ansible-lint --offline roles playbooks
yamllint roles playbooks inventory

echo "== tests"
python -m pytest tests/unit tests/integration "$@"

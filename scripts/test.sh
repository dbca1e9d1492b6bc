#!/usr/bin/env bash
# The README's second command, and what CI runs: set up, lint, then unit and integration tests.
# Prints each tier's wall time at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
setup_s=$((SECONDS - start))

echo "== lint"
t=$SECONDS
# The component playbooks and group_vars/all.yml are rendered by `rigforge init`: lint a fresh
# workspace's copies too.
lint_ws=$(mktemp -d)
ruff check provision tests bench && ansible-lint --offline roles playbooks && yamllint roles playbooks inventory \
  && rigforge init "$lint_ws/ws" >/dev/null \
  && (cd "$lint_ws/ws" && ansible-lint --offline --profile production playbooks site.yml \
      && yamllint -c "$OLDPWD/.yamllint" playbooks site.yml inventory)
lint_rc=$?
rm -rf "$lint_ws"
lint_s=$((SECONDS - t))

echo "== unit tests"
t=$SECONDS
python -m pytest tests/unit "$@"
unit_rc=$?
unit_s=$((SECONDS - t))

echo "== integration tests"
t=$SECONDS
python -m pytest tests/integration --durations=20 "$@"
integration_rc=$?
integration_s=$((SECONDS - t))

echo "== times: setup ${setup_s} s, lint ${lint_s} s, unit ${unit_s} s, integration ${integration_s} s," \
     "total $((SECONDS - start)) s (exit codes: lint ${lint_rc}, unit ${unit_rc}, integration ${integration_rc})"
for rc in "$lint_rc" "$unit_rc" "$integration_rc"; do
  [ "$rc" -eq 0 ] || exit "$rc"
done

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
# Two workers, a test module each at a time: most of a module's time is one core's work (a
# remote apt or dpkg, ansible), so two run in about the time of one. Hosts carry their worker's
# pid in their names; the few tests that change this machine's shared network state are marked
# `exclusive` and run alone afterwards. pytest's exit 5 (no test selected) is not a failure.
python -m pytest tests/integration -n 2 --dist loadfile -m "not exclusive" --durations=25 "$@"
integration_rc=$?
python -m pytest tests/integration -m exclusive "$@"
exclusive_rc=$?
[ "$exclusive_rc" -eq 5 ] && exclusive_rc=0
[ "$integration_rc" -eq 0 ] && integration_rc=$exclusive_rc
integration_s=$((SECONDS - t))

echo "== times: setup ${setup_s} s, lint ${lint_s} s, unit ${unit_s} s, integration ${integration_s} s," \
     "total $((SECONDS - start)) s (exit codes: lint ${lint_rc}, unit ${unit_rc}, integration ${integration_rc})"
for rc in "$lint_rc" "$unit_rc" "$integration_rc"; do
  [ "$rc" -eq 0 ] || exit "$rc"
done

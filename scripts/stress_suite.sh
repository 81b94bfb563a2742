#!/usr/bin/env bash
# Run the test suite again and again on a fresh clone while two busy loops keep the
# CPUs busy: tests that depend on wall-clock luck fail here.
#
#   scripts/stress_suite.sh [N] [--venv DIR] [--keep] [-- PYTEST ARGS...]
#
#   N               runs (default 3)
#   --venv DIR      the virtualenv to reuse (default: this checkout's .venv), symlinked
#                   into the clone so nothing is reinstalled
#   --busy K        busy loops (default 2; 0: none)
#   --distributed   run only tests/test_distributed.py (same as -- tests/test_distributed.py)
#   --keep          keep the clone (its path is printed)
#   -- ARGS         passed to pytest instead of the whole suite (paths, -k, -x, ...)
#
# The clone is of the committed HEAD of this checkout (uncommitted changes are not
# in it). Prints "N runs, F failed" last; exits 1 when any run failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=3
venv="$here/.venv"
busy=2
keep=0
pytest_args=()
while (($#)); do
    case "$1" in
        --venv) venv="$(cd "$2" && pwd)"; shift 2 ;;
        --busy) busy="$2"; shift 2 ;;
        --distributed) pytest_args=(tests/test_distributed.py); shift ;;
        --keep) keep=1; shift ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *[!0-9]*|'') echo "stress_suite.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        *) runs="$1"; shift ;;
    esac
done
[[ -x "$venv/bin/python" ]] || { echo "stress_suite.sh: no virtualenv at $venv (--venv DIR)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/stress_suite.XXXXXX")"
busy_pids=()
cleanup() {
    for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${busy_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if ((keep)); then echo "clone kept: $work/repo"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git clone --quiet "$here" "$work/repo"
ln -s "$venv" "$work/repo/.venv"
cd "$work/repo"
echo "clone of $(git rev-parse --short HEAD) in $work/repo; venv $venv; $busy busy loops"

for ((i = 0; i < busy; i++)); do
    bash -c 'while :; do :; done' &
    busy_pids+=("$!")
done

failed=0
for ((run = 1; run <= runs; run++)); do
    log="$work/run_$run.log"
    start=$SECONDS
    if .venv/bin/python -m pytest -q -p no:cacheprovider "${pytest_args[@]}" >"$log" 2>&1; then
        echo "run $run: passed ($((SECONDS - start)) s): $(tail -n 1 "$log")"
    else
        failed=$((failed + 1))
        echo "run $run: FAILED ($((SECONDS - start)) s):"
        grep -E '^(FAILED|ERROR) ' "$log" || tail -n 30 "$log"
        cp "$log" "${TMPDIR:-/tmp}/stress_suite_failed_run_$run.log"
        echo "  (log: ${TMPDIR:-/tmp}/stress_suite_failed_run_$run.log)"
    fi
done
echo "$runs runs, $failed failed"
((failed == 0))

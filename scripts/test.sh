#!/usr/bin/env bash
# The whole test suite, from a fresh machine: setup (idempotent), then every stage below.
# Every stage runs even after a failure so one run shows everything broken; the exit code is
# non-zero if any stage failed. Usage: scripts/test.sh [stage ...]  (default: all stages)
source "$(dirname "$0")/lib/common.sh"
bash "$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"

OUT_DIR="$REPO_ROOT/out/test"; mkdir -p "$OUT_DIR"
ALL_STAGES=(lint sanity units pytest molecule pytest-vllm)
STAGES=("${@:-${ALL_STAGES[@]}}")
passed=(); failed=()

run_stage() {
  local name="$1"; shift
  log "stage $name: $*"
  local start=$SECONDS
  if "$@"; then passed+=("$name"); log "stage $name passed in $((SECONDS - start)) s"
  else failed+=("$name"); log "stage $name FAILED after $((SECONDS - start)) s"; fi
}

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
pytest_strict() { pytest "$@"; local rc=$?; [ $rc -eq 5 ] && echo "pytest collected no tests: $*" >&2; return $rc; }

stage_lint() { ansible-lint; }
stage_sanity() { bash scripts/ansible-test.sh sanity; }
stage_units() { bash scripts/ansible-test.sh units; }
stage_pytest() { pytest_strict -m "not needs_vllm_image" --junitxml="$OUT_DIR/pytest.xml"; }
stage_pytest_vllm() { pytest_strict -m needs_vllm_image --junitxml="$OUT_DIR/pytest-vllm.xml"; }
failed_logs=()

# gaming_twin runs beside the other stages, from the start: its Docker world is a daemon of its own in
# its own network namespace (molecule/gaming_twin/twin), so it shares only the CPU and the first
# daemon's image store with them, and half of these 2 cores sit idle while one playbook runs. It is
# joined at the end of the molecule stage (pytest-vllm, whose speed checks want the machine to
# themselves, runs after it); its output is printed as one block when it ends. On a cold image cache
# its prepare builds the local profile's torch and vLLM images first (twin.sh ensure_local_bases).
BACKGROUND_SCENARIO=gaming_twin
background_pid=""; background_start=0
start_background_scenario() {
  log "molecule scenario $BACKGROUND_SCENARIO starts in the background (log: $OUT_DIR/molecule-$BACKGROUND_SCENARIO.log)"
  background_start=$SECONDS
  # Molecule keeps a scenario's state (created, prepared) under ~/.ansible/tmp between runs, keyed by
  # the scenario's name, not the checkout: a second suite on the same machine would skip
  # gaming_twin's prepare (its twin daemon) and fail. Every run starts as on a fresh machine.
  # setsid: a process group of its own, so an early exit stops all of it (the trap below).
  setsid bash -c 'molecule reset -s "$1" >/dev/null 2>&1 || true; exec molecule test -s "$1" >"$2" 2>&1' \
    _ "$BACKGROUND_SCENARIO" "$OUT_DIR/molecule-$BACKGROUND_SCENARIO.log" &
  background_pid=$!
}
join_background_scenario() { # returns the scenario's status; prints its log as one block
  [ -n "$background_pid" ] || return 0
  local rc=0
  log "waiting for the background molecule scenario $BACKGROUND_SCENARIO"
  wait "$background_pid" || rc=$?
  background_pid=""
  cat "$OUT_DIR/molecule-$BACKGROUND_SCENARIO.log"
  if [ $rc -eq 0 ]; then
    log "molecule scenario $BACKGROUND_SCENARIO passed in $((SECONDS - background_start)) s (in the background)"
  else
    failed_logs+=("$OUT_DIR/molecule-$BACKGROUND_SCENARIO.log")
    log "molecule scenario $BACKGROUND_SCENARIO FAILED after $((SECONDS - background_start)) s (in the background)"
  fi
  return $rc
}
# Never leave the background scenario running when this script stops early.
trap '[ -z "$background_pid" ] || kill -- "-$background_pid" 2>/dev/null || true' EXIT

stage_molecule() {
  local rc=0 s start
  for s in molecule/*/molecule.yml; do
    s="$(basename "$(dirname "$s")")"
    [ "$s" != "$BACKGROUND_SCENARIO" ] || continue
    log "molecule scenario $s"
    start=$SECONDS
    # Every run starts as on a fresh machine (see start_background_scenario).
    # Each scenario's output is kept so a failure can be shown again at the very end, where a
    # CI log that keeps only its tail still shows what broke.
    molecule reset -s "$s" >/dev/null 2>&1 || true
    if molecule test -s "$s" 2>&1 | tee "$OUT_DIR/molecule-$s.log"; then
      log "molecule scenario $s passed in $((SECONDS - start)) s"
    else
      rc=1; failed_logs+=("$OUT_DIR/molecule-$s.log")
      log "molecule scenario $s FAILED after $((SECONDS - start)) s"
    fi
  done
  join_background_scenario || rc=1
  return $rc
}

# The background scenario starts once setup is done, when the molecule stage is asked for.
if [[ " ${STAGES[*]} " == *" molecule "* ]]; then start_background_scenario; fi
for stage in "${STAGES[@]}"; do
  case "$stage" in
    lint|sanity|units|pytest|molecule) run_stage "$stage" "stage_$stage" ;;
    pytest-vllm) run_stage "$stage" stage_pytest_vllm ;;
    *) die "unknown stage '$stage' (stages: ${ALL_STAGES[*]})" ;;
  esac
done

for f in "${failed_logs[@]}"; do
  log "the failure in $(basename "$f" .log), again (last 150 lines of $f):"
  grep -v '^\s*$' "$f" | tail -n 150
done
log "passed stages: ${passed[*]:-none}"
[ ${#failed[@]} -eq 0 ] || { log "FAILED stages: ${failed[*]}"; exit 1; }

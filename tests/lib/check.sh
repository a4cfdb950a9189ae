# shellcheck shell=bash
# The one pass/fail dialect of the shell test suites (tests/run.sh, tests/verify.sh,
# tests/boot/*.sh, tests/kernel/run.sh, tests/lvm/run.sh, tests/packaging/*.sh, fuzz/smoke.sh).
# Source it; it defines nothing else and runs nothing.
#
#   CHECK_SUITE=name             the suite's name, the prefix of its closing line
#   pass DESC / fail DESC        one assertion that passed / failed: "  ok   DESC" / "  FAIL DESC"
#   info DESC                    a note that is no assertion: "  info DESC"
#   check DESC CMD...            pass if CMD succeeds, else fail (CMD's output is discarded)
#   check_log DESC CMD...        the same, CMD's output kept in $CHECK_LOG_DIR/t-DESC.log and
#                                its last $CHECK_TAIL (25) lines shown on failure (all of it on
#                                success too with CHECK_VERBOSE=1); DESC gets "(N s)"
#   check_eq DESC GOT WANT       pass if GOT == WANT, else fail saying both
#   check_has DESC TEXT PART     pass if TEXT contains PART, else fail saying both
#   check_opt DESC LIST OPT      pass if OPT is one of the comma-separated LIST (mount options)
#   summary                      the closing line "$CHECK_SUITE: N passed, M failed" (CI reads
#                                it); returns 0 iff nothing failed: end a suite with it
#   abort MSG [RC]               a failure that ends the suite: logs MSG, counts it, prints the
#                                closing line (when CHECK_SUITE is set), exits RC (2)
#   need_root [RC]               abort "run as root" unless root (exit RC, 2)
#   log MSG / die MSG            "[HH:MM:SS] MSG" on stderr / log "FATAL: MSG" and exit 2
#   now_ms                       milliseconds since the epoch
# Every helper returns 0 (a failed check never ends a suite, set -e or not): a caller that
# wants to know compares CHECK_FAIL before and after.
# Counters: CHECK_PASS, CHECK_FAIL. CHECK_QUIET_PASS=1: passes are counted but not printed
# (for suites that check many items of one kind and print only the failures).
# CHECK_RESULTS=FILE (exported): every pass, fail and info is also appended to FILE as
# "PASS DESC" / "FAIL DESC" / "INFO DESC", and summary counts from FILE: for suites whose
# checks run in child processes (the kernel test's mount namespaces).
[ -z "${CHECK_SH_SOURCED:-}" ] || return 0   # once per shell (tests/boot/lib.sh sources it too)
CHECK_SH_SOURCED=1
CHECK_PASS=0; CHECK_FAIL=0
CHECK_SUITE=${CHECK_SUITE:-}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

_check_record() { # KIND DESC
    if [ -n "${CHECK_RESULTS:-}" ]; then printf '%s %s\n' "$1" "$2" >> "$CHECK_RESULTS"; fi
    return 0
}
pass() {
    CHECK_PASS=$((CHECK_PASS + 1)); _check_record PASS "$*"
    if [ "${CHECK_QUIET_PASS:-0}" != 1 ]; then printf '  ok   %s\n' "$*"; fi
    return 0
}
fail() { CHECK_FAIL=$((CHECK_FAIL + 1)); _check_record FAIL "$*"; printf '  FAIL %s\n' "$*"; return 0; }
info() { _check_record INFO "$*"; printf '  info %s\n' "$*"; return 0; }

check() {
    local desc=$1; shift
    if "$@" >/dev/null 2>&1; then pass "$desc"; else fail "$desc"; fi
}
check_log() {
    local desc=$1 t0=$SECONDS out; shift
    out=${CHECK_LOG_DIR:?check_log: CHECK_LOG_DIR is not set}/t-${desc//[^A-Za-z0-9_.-]/_}.log
    if "$@" >"$out" 2>&1; then
        pass "$desc ($((SECONDS - t0)) s)"
        if [ -n "${CHECK_VERBOSE:-}" ]; then sed 's/^/     /' "$out"; fi
    else
        fail "$desc ($((SECONDS - t0)) s)"; tail -n "${CHECK_TAIL:-25}" "$out" | sed 's/^/     /'
    fi
    return 0
}
check_eq() { if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1 (got '$2', want '$3')"; fi; }
check_has() { if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1 ('$3' not in '$2')"; fi; }
check_opt() { if [[ ",$2," == *",$3,"* ]]; then pass "$1"; else fail "$1 (option '$3' not in '$2')"; fi; }

summary() {
    local p=$CHECK_PASS f=$CHECK_FAIL
    if [ -n "${CHECK_RESULTS:-}" ]; then
        p=$(grep -c '^PASS' "$CHECK_RESULTS" || :); f=$(grep -c '^FAIL' "$CHECK_RESULTS" || :)
    fi
    echo "${CHECK_SUITE:-checks}: $p passed, $f failed"
    [ "$f" -eq 0 ]
}
abort() {
    log "FATAL: $1"; CHECK_FAIL=$((CHECK_FAIL + 1)); _check_record FAIL "$1"
    if [ -n "$CHECK_SUITE" ]; then summary || :; fi
    exit "${2:-2}"
}
need_root() { [ "$(id -u)" = 0 ] || abort "${CHECK_SUITE:-$0}: run as root" "${1:-2}"; }

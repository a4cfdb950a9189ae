#!/bin/bash
# Long fuzz run: each target to RUNS executions (default 10 000 000) from the committed
# corpus, in a scratch corpus under OUT (default /var/tmp/nix-ssd-fuzz-long), with
# libFuzzer's final stats kept in OUT/<target>.log. Targets given as arguments run one after
# the other (default: all four). Not part of the test command; the closing note of the
# hardening issue quotes its figures. After a run, `fuzz/long.sh --merge` copies the committed
# corpus to OUT/merged/<target> and adds only the inputs of the run that reach code edges the
# committed ones do not (set cover on edges, not hit counts: a few dozen files, not thousands),
# to be reviewed and copied into fuzz/corpus/<target>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/var/tmp/nix-ssd-fuzz-long}; runs=${RUNS:-10000000}
export PATH=$HOME/.cargo/bin:$PATH
bin=$here/target/x86_64-unknown-linux-gnu/release
mkdir -p "$out"
if [ "${1:-}" = --merge ]; then
    shift
    for t in "${@:-cmdline config blkid pipeline}"; do
        for t1 in $t; do
            rm -rf "$out/merged/$t1"; mkdir -p "$out/merged/$t1"; cp "$here/corpus/$t1"/* "$out/merged/$t1/"
            "$bin/$t1" -merge=1 -set_cover_merge=1 -use_counters=0 -use_cmp=0 -use_value_profile=0 -max_len=4096 \
                "$out/merged/$t1" "$out/$t1" >"$out/merge-$t1.log" 2>&1
            echo "merge $t1: $(ls "$out/merged/$t1" | wc -l) files, $(du -sk --apparent-size "$out/merged/$t1" | cut -f1) KiB (committed: $(ls "$here/corpus/$t1" | wc -l)); $(tail -1 "$out/merge-$t1.log")"
        done
    done
    exit 0
fi
[ -x "$bin/pipeline" ] || (cd "$here" && cargo +nightly fuzz build -O --sanitizer none)
for t in "${@:-cmdline config blkid pipeline}"; do
  for t1 in $t; do
    mkdir -p "$out/$t1"; cp -n "$here/corpus/$t1"/* "$out/$t1/" 2>/dev/null || true
    start=$(date +%s); rc=0
    "$bin/$t1" "$out/$t1" -runs="$runs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$out/crash-$t1-" >"$out/$t1.log" 2>&1 || rc=$?
    n=$(awk '/stat::number_of_executed_units/ {print $2}' "$out/$t1.log")
    echo "fuzz-long $t1: exit $rc, ${n:-?} executions in $(( $(date +%s) - start )) s, corpus $(ls "$out/$t1" | wc -l) files" | tee -a "$out/summary.txt"
  done
done

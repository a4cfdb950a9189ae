#!/usr/bin/env bash
# Real-kernel test of nix-ssd-generator + `nix-ssd activate` (no mocks).
#
#   sudo bash tests/kernel/run.sh
#
# Needs root, loop devices, btrfs and overlayfs in the kernel. Installs
# btrfs-progs with apt-get if mkfs.btrfs is missing. Builds the release
# binaries if target/release/{nix-ssd-generator,nix-ssd} are missing
# (override with NIX_SSD_GENERATOR=/path NIX_SSD_BIN=/path, NO_BUILD=1).
#
# Everything that mounts runs inside `unshare --mount --propagation private` (each scenario
# also in its own PID namespace: activate must not see a nix-daemon running elsewhere),
# each activate scenario in its own nested mount namespace, so all mounts vanish
# with the namespaces; the loop device is always detached by an EXIT trap.
# The only host-visible side effects are: a temp dir under /var/tmp (removed),
# a loop device (detached) and, if /nix does not exist on the host, an empty
# /nix mount-point directory (removed again). Runs are serialised with flock.
#
# Last line of output: `kernel: N passed, M failed`; exit status 0 iff M == 0.

set -uo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
REPO=$(cd "$HERE/../.." && pwd)
KT_PY="$HERE/kt.py"

# ---------------------------------------------------------------- helpers ---
# pass, fail, info, check, check_eq, check_has, check_opt, summary: tests/lib/check.sh. The
# checks run in nested mount namespaces (this script again, --ns / --scenario): every result
# goes to $CHECK_RESULTS (exported by outer_main), which summary counts.
CHECK_SUITE=kernel; . "$REPO/tests/lib/check.sh"
py() { python3 "$KT_PY" "$@"; }

# ============================================================ scenario ======
# Runs in a nested private mount namespace (fresh fake /nix and /run).
# Env: KT_* exported by the --ns stage.
setup_fake_nix() {
    mount -t tmpfs -o mode=0755 kt-nix /nix || return 1
    # Like a booted system where systemd made / shared: without an explicit
    # --make-private the bind of /nix/store would join this peer group.
    mount --make-shared /nix || return 1
    mkdir -p /nix/store/aaaa-hello/bin /nix/store/bbbb-dir/sub /nix/var/nix/db || return 1
    echo lower-content >/nix/store/aaaa-hello/bin/hello
    echo lower2 >/nix/store/aaaa-hello/rename-me
    echo lower3 >/nix/store/bbbb-dir/sub/f
    if [[ "${1:-}" != nodb ]]; then : >/nix/var/nix/db/db.sqlite; fi
    # the internal disk's roots, as NixOS has them (current-system is an indirect root)
    mkdir -p /nix/var/nix/gcroots /nix/var/nix/profiles || return 1
    ln -s /run/current-system /nix/var/nix/gcroots/current-system
    ln -s /nix/store/aaaa-hello /nix/var/nix/profiles/system-1-link
    mkdir -p /nix/var/nix/gcroots/nix-ssd-lower && ln -s /nix/store/bbbb-dir /nix/var/nix/gcroots/nix-ssd-lower/bbbb-dir
    # activate writes its env file (usually under /run); keep that private too
    mount -t tmpfs -o mode=0755 kt-run /run || return 1
}

run_activate() { # -> $ACT_RC, $ACT_OUT
    mapfile -t args <"$KT_DIR/activate.args"
    ACT_OUT=$(timeout 60 "$KT_NSSD" "${args[@]:1}" 2>&1)
    ACT_RC=$?
    echo "  \$ ${args[0]}(=$KT_NSSD) ${args[*]:1}  -> rc=$ACT_RC"
    sed 's/^/  | /' <<<"$ACT_OUT"
}

scenario_positive() {
    local T="positive"
    setup_fake_nix || { fail "$T: fake nix setup"; return; }
    run_activate
    check_eq "$T: activate exit status" "$ACT_RC" 0

    local top fstype opts sopts optional root
    top=$(py mi-top /nix/store)
    IFS=$'\x1f' read -r fstype opts sopts optional root _ <<<"$top"
    check_eq "$T: /nix/store is overlay" "$fstype" overlay
    check_opt "$T: overlay upperdir" "$sopts" "upperdir=$KT_MP/overlay/upper"
    check_opt "$T: overlay workdir" "$sopts" "workdir=$KT_MP/overlay/work"
    if [[ ",$sopts," == *",lowerdir=/nix/.lower-store,"* || ",$sopts," == *",lowerdir+=/nix/.lower-store,"* ]]; then
        pass "$T: overlay lowerdir=/nix/.lower-store"
    else fail "$T: overlay lowerdir=/nix/.lower-store (super options: '$sopts')"; fi

    top=$(py mi-top /nix/.lower-store)
    IFS=$'\x1f' read -r fstype opts sopts optional root _ <<<"$top"
    check_eq "$T: /nix/.lower-store is a bind of the /nix fs" "$fstype" tmpfs
    check_eq "$T: /nix/.lower-store bind root is /store" "$root" /store
    check_opt "$T: /nix/.lower-store read-only" "$opts" ro
    if [[ "$optional" != *shared:* && "$optional" != *master:* ]]; then
        pass "$T: /nix/.lower-store private (mountinfo optional fields '$optional')"
    else fail "$T: /nix/.lower-store not private (mountinfo optional fields '$optional', /nix is shared)"; fi
    local n_ov under
    n_ov=$(py mi-count overlay)
    check_eq "$T: exactly one overlay mount in namespace" "$n_ov" 1
    under=$(py mi-under overlay /nix/.lower-store)
    check_eq "$T: no overlay propagated onto /nix/.lower-store" "$under" ""
    check "$T: lower store visible at /nix/.lower-store" test -f /nix/.lower-store/aaaa-hello/bin/hello
    check "$T: lower file visible through overlay" grep -qx lower-content /nix/store/aaaa-hello/bin/hello
    check_eq "$T: writing through /nix/.lower-store fails (ro)" "$(py op write /nix/.lower-store/kt-ro-probe | cut -d: -f1)" "errno EROFS"

    local o; o=$(py mi-top /nix/store | cut -d$'\x1f' -f2,3)
    check_opt "$T: overlay nosuid (nothing on the SSD elevates)" "${o//$'\x1f'/,}" nosuid
    check_opt "$T: overlay nodev" "${o//$'\x1f'/,}" nodev
    check_opt "$T: overlay redirect_dir=nofollow" "${o//$'\x1f'/,}" redirect_dir=nofollow
    check_eq "$T: /nix/store read-only for root outside the daemon" "$(py op write /nix/store/kt-ro-probe | cut -d: -f1)" "errno EROFS"
    # the overlay store's roots (its state= on the SSD) include the internal disk's, read-only
    local g=$KT_MP/overlay/state/gcroots
    check_eq "$T: eMMC gcroots bound into the overlay store's gcroots" \
        "$(readlink "$g/nix-ssd-lower-gcroots/current-system")" /run/current-system
    check_eq "$T: eMMC profiles bound into the overlay store's gcroots" \
        "$(readlink "$g/nix-ssd-lower-profiles/system-1-link")" /nix/store/aaaa-hello
    check_eq "$T: sync-roots' roots (nix-ssd-lower) hidden from the overlay store" \
        "$(ls -A "$g/nix-ssd-lower-gcroots/nix-ssd-lower" 2>&1)" ""
    check "$T: ... and still there for the eMMC store" test -L /nix/var/nix/gcroots/nix-ssd-lower/bbbb-dir
    o=$(py mi-top "$g/nix-ssd-lower-gcroots" | cut -d$'\x1f' -f2)
    check_opt "$T: the gcroots bind is read-only" "$o" ro
    check_opt "$T: the gcroots bind is nosuid" "$o" nosuid
    check_eq "$T: the overlay store cannot change the eMMC's roots" \
        "$(py op write "$g/nix-ssd-lower-gcroots/kt-probe" | cut -d: -f1)" "errno EROFS"
    # what nix-daemon does in its own namespace (Nix's makeStoreWritable); this scenario's
    # namespace is that of the daemon from here on
    mount -o remount,bind,rw /nix/store || fail "$T: remount /nix/store writable as the daemon does"

    # new file lands in upper
    check_eq "$T: create new file in /nix/store" "$(py op write /nix/store/kt-new-file)" ok
    check "$T: new file is in <mp>/overlay/upper" test -f "$KT_MP/overlay/upper/kt-new-file"
    check "$T: new file not in lower" test ! -e /nix/.lower-store/kt-new-file

    # copy-up then rm of a lower file
    check_eq "$T: copy-up (append to lower file)" "$(py op append /nix/store/aaaa-hello/bin/hello)" ok
    check "$T: copied-up file in upper" grep -qx appended "$KT_MP/overlay/upper/aaaa-hello/bin/hello"
    check_eq "$T: rm of copied-up lower file (no EXDEV)" "$(py op rm /nix/store/aaaa-hello/bin/hello)" ok
    check "$T: file gone from /nix/store" test ! -e /nix/store/aaaa-hello/bin/hello
    local wo="$KT_MP/overlay/upper/aaaa-hello/bin/hello"
    if [[ -c "$wo" && "$(stat -c %t:%T "$wo")" == 0:0 ]]; then pass "$T: whiteout in upper"
    else fail "$T: whiteout in upper ($(stat -c '%F %t:%T' "$wo" 2>&1))"; fi
    check "$T: lower file untouched" grep -qx lower-content /nix/.lower-store/aaaa-hello/bin/hello
    check_eq "$T: rename of lower regular file (no EXDEV)" \
        "$(py op rename /nix/store/aaaa-hello/rename-me /nix/store/aaaa-hello/renamed)" ok
    check_eq "$T: rm -r of lower directory" "$(py op rmtree /nix/store/bbbb-dir)" ok
    info "$T: rename of lower *directory*: $(py op rename /nix/store/aaaa-hello /nix/store/aaaa-hello.renamed) (EXDEV is normal without redirect_dir)"

    # env file for nix-daemon
    if [[ -z "$KT_ENVFILE" ]]; then
        fail "$T: env file path (no EnvironmentFile= in nix-daemon.service.d/50-nix-ssd.conf)"
    else
        check "$T: env file $KT_ENVFILE exists" test -f "$KT_ENVFILE"
        local envtxt; envtxt=$(cat "$KT_ENVFILE" 2>/dev/null)
        check_has "$T: env file sets NIX_CONFIG" "$envtxt" "NIX_CONFIG="
        check_has "$T: env file has 'store = local-overlay://'" "$envtxt" "store = local-overlay://"
        echo "  env file $KT_ENVFILE:"; sed 's/^/  | /' <<<"$envtxt"
    fi

    # second activation (e.g. service restarted): informational
    local before after
    before=$(py mi-list)
    run_activate
    after=$(py mi-list)
    if [[ "$before" == "$after" ]]; then info "$T: second activate (rc=$ACT_RC) left mounts unchanged"
    else info "$T: second activate (rc=$ACT_RC) CHANGED mounts: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';')"; fi
}

# refusal scenarios: activate must exit 0, say why, mount nothing, write no env file
expect_refusal() { # NAME REGEX-for-reason
    local T=$1 why=$2 before after
    before=$(py mi-list)
    run_activate
    after=$(py mi-list)
    check_eq "$T: activate exit status (refuses with 0)" "$ACT_RC" 0
    if [[ "$before" == "$after" ]]; then pass "$T: nothing mounted"
    else fail "$T: mounts changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';')"; fi
    if grep -Eqi -- "$why" <<<"$ACT_OUT"; then pass "$T: says why (matches /$why/)"
    else fail "$T: no reason matching /$why/ in output"; fi
    envfile_no_overlay "$T"
}

# With the overlay not stacked, nix-daemon must not be pointed at a local-overlay
# store. (activate may still write build-dir = <build subvolume>; reported as INFO.)
envfile_no_overlay() {
    local T=$1
    if [[ -n "$KT_ENVFILE" && -e "$KT_ENVFILE" ]]; then
        if grep -q 'local-overlay' "$KT_ENVFILE"; then
            fail "$T: env file $KT_ENVFILE selects a local-overlay store although no overlay is mounted: $(tr '\n' ' ' <"$KT_ENVFILE")"
        else
            pass "$T: env file does not select a local-overlay store"
            info "$T: env file written anyway: $(grep -v '^#' "$KT_ENVFILE" | tr '\n' ' ')"
        fi
    else pass "$T: no env file written"; fi
}

scenario_missing_work() {
    setup_fake_nix || { fail "missing-work: fake nix setup"; return; }
    expect_refusal missing-work 'work'
}

scenario_missing_db() {
    setup_fake_nix nodb || { fail "missing-db: fake nix setup"; return; }
    expect_refusal missing-db 'db\.sqlite|database|db'
}

# upper and work on separate subvolumes, mounted separately: overlayfs refuses that ("workdir
# and upperdir must reside under the same mount"; reached through one mount instead, every
# copy-up fails with EXDEV), so activate must refuse it cleanly (check_layout in src/activate.rs)
scenario_separate_subvols() {
    local T=separate-subvols before after
    setup_fake_nix || { fail "$T: fake nix setup"; return; }
    mount -t btrfs -o subvol=@kt-upper "$KT_LOOP" "$KT_MP/overlay/upper" &&
        mount -t btrfs -o subvol=@kt-work "$KT_LOOP" "$KT_MP/overlay/work" ||
        { fail "$T: mounting separate upper/work subvolumes"; return; }
    before=$(py mi-list)
    run_activate
    after=$(py mi-list)
    info "$T: activate rc=$ACT_RC; /nix/store top mount: $(py mi-top /nix/store | tr '\037' ' ' | cut -d' ' -f1,3)"
    check_eq "$T: no overlay mounted" "$(py mi-count overlay)" 0
    if [[ "$before" == "$after" ]]; then pass "$T: fails cleanly (mount table unchanged)"
    else fail "$T: left mounts behind: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';')"; fi
    if [[ -n "$ACT_OUT" ]]; then pass "$T: says why"; else fail "$T: silent failure"; fi
    envfile_no_overlay "$T"
    check "$T: /nix/store still has its content" test -f /nix/store/aaaa-hello/bin/hello
}

# ============================================================ --ns stage =====
gen_run() { # OUTDIR ROOT CMDLINE -> rc; logs in OUTDIR.log
    local out=$1 root=$2 cmdline=$3
    rm -rf "$out"; mkdir -p "$out/normal" "$out/early" "$out/late"
    env SYSTEMD_PROC_CMDLINE="$cmdline" NIX_SSD_GENERATOR_ROOT="$root" \
        SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=debug \
        timeout 30 "$KT_GEN" "$out/normal" "$out/early" "$out/late" >"$out.log" 2>&1
}

mount_units() { # GENDIR EXPECTED_WHAT
    local d=$1 want_what=$2 u what where type options subvol rc err top fstype opts sopts
    local -a units
    mapfile -t units < <(find "$d/normal" "$d/early" "$d/late" -maxdepth 1 -type f -name '*.mount' | sort)
    if ((${#units[@]} == 0)); then fail "no .mount units generated in $d"; return; fi
    for u in "${units[@]}"; do
        local n; n=$(basename "$u")
        what=$(py unit "$u" Mount What); where=$(py unit "$u" Mount Where)
        type=$(py unit "$u" Mount Type); options=$(py unit "$u" Mount Options)
        echo "  $n: What=$what Where=$where Type=$type Options=$options"
        check_eq "$n: What=" "$what" "$want_what"
        check_eq "$n: unit name matches Where=" "$n" "$(systemd-escape -p --suffix=mount "$where")"
        if [[ "$where" != "$KT_DIR"/* ]]; then
            # never create or mount anything on the host's real paths
            fail "$n: Where=$where is not under the configured mount point $KT_MP; not mounting it"
            continue
        fi
        mkdir -p "$where"
        err=$(mount -t "$type" -o "$options" "$what" "$where" 2>&1); rc=$?
        if ((rc != 0)); then
            info "$n: mount(8) failed with the unit's exact Options= (rc=$rc: $err); retrying without nofail"
            local o2; o2=$(tr ',' '\n' <<<"$options" | grep -vx nofail | paste -sd,)
            err=$(mount -t "$type" -o "$o2" "$what" "$where" 2>&1); rc=$?
        else
            info "$n: mount(8) accepted Options= verbatim, nofail included (userspace-only option, dropped by libmount)"
        fi
        if ((rc != 0)); then fail "$n: mount -t $type -o $options $what $where: $err"; continue; fi
        # mount(8) exits 0 for a missing source device when nofail is given: check the table
        if ! mountpoint -q "$where"; then fail "$n: mount exited 0 but nothing is mounted on $where"; continue; fi
        pass "$n: mounted"
        top=$(py mi-top "$where")
        IFS=$'\x1f' read -r fstype opts sopts _ <<<"$top"
        local fm; fm=$(findmnt -no FSTYPE,OPTIONS --mountpoint "$where" | tail -1 | awk '{print $1" "$2}')
        echo "    findmnt: $fm"
        check_eq "$n: fstype" "$fstype" btrfs
        subvol=$(tr ',' '\n' <<<"$options" | sed -n 's/^subvol=//p' | tail -1)
        if [[ -z "$subvol" ]]; then fail "$n: no subvol= in Options="; continue; fi
        check_opt "$n: findmnt subvol" "${fm#* }" "subvol=/${subvol#/}"
        # no compression: benches/native measured none fastest on import, add and build
        if [[ ",$options," != *",compress"* ]]; then
            if [[ ",${fm#* }," != *",compress"* ]]; then
                pass "$n: no compression active"; else fail "$n: compression active (${fm#* })"; fi
        else fail "$n: Options= asks for compression ($options)"; fi
        check_opt "$n: noatime active" "${fm#* }" noatime
        check "$n: marker proves subvolume ${subvol}" grep -qx "${subvol#/}" "$where/.kt-subvol"
        case "$where" in
            */overlay) check_eq "$n: overlay mount uses @overlay" "${subvol#/}" @overlay ;;
            */build) check_eq "$n: build mount uses @build" "${subvol#/}" @build ;;
            */cache) check_eq "$n: cache mount uses @cache" "${subvol#/}" @cache ;;
        esac
    done
}

# --adopt on a btrfs of the older four-subvolume layout (@upper @work @build @cache, from before
# upper, work and state had to share one subvolume) keeps @upper's files: `nix-ssd setup
# --adopt` turns it into @overlay/{upper,work,state} @build @cache (README).
adopt_test() {
    local img=$1
    truncate -s 300M "$img"; mkfs.btrfs -q -L NIX_SSD "$img" >/dev/null 2>&1
    unshare --mount --propagation private bash -c '
        d=$(mktemp -d); mount -o subvolid=5 "$1" "$d" || exit 1
        for s in @upper @work @build @cache; do btrfs -q subvolume create "$d/$s" || exit 1; done
        mkdir -p "$d/@upper/aaaa-kept/bin"; echo kept-data > "$d/@upper/aaaa-kept/bin/x"
        umount "$d"; rmdir "$d"' _ "$img" || { fail "adopt: build the four-subvolume layout"; return; }
    if "$KT_NSSD" setup --adopt "$img" 2>"$KT_DIR/adopt.log"; then pass "nix-ssd setup --adopt ran"; else fail "nix-ssd setup --adopt: $(cat "$KT_DIR/adopt.log")"; return; fi
    local out
    out=$(unshare --mount --propagation private bash -c '
        d=$(mktemp -d); mount -o subvolid=5 "$1" "$d" || exit 1
        cat "$d/@overlay/upper/aaaa-kept/bin/x"; btrfs subvolume list "$d" | sed "s/.* path //" | sort | tr "\n" " "
        for x in upper work state; do test -d "$d/@overlay/$x" && echo -n "$x "; done
        umount "$d"; rmdir "$d"' _ "$img")
    check_has "adopt: the file written into the old @upper is in @overlay/upper" "$out" kept-data
    check_has "adopt: subvolumes afterwards" "$out" "@build @cache @overlay "
    check_has "adopt: plain dirs upper work state" "$out" "upper work state"
    rm -f "$img"
}

ns_main() {
    # --- subvolumes
    local top="$KT_DIR/top" s
    mkdir -p "$top"
    mount -t btrfs -o subvolid=5 "$KT_LOOP" "$top" || { fail "mount btrfs top level"; return 1; }
    # @overlay (upper/ work/ state/), @build, @cache come from `nix-ssd setup`
    for s in @overlay @build @cache; do
        if [[ -d "$top/$s" ]] && [[ "$(stat -c %i "$top/$s")" == 256 ]]; then pass "nix-ssd setup made subvolume $s"
        else fail "nix-ssd setup made subvolume $s"; fi
    done
    for d in upper:755 work:700 state:755; do
        check_eq "nix-ssd setup made @overlay/${d%%:*} mode ${d#*:} root:root" \
            "$(stat -c '%a %U:%G' "$top/@overlay/${d%%:*}" 2>&1)" "${d#*:} root:root"
    done
    check_eq "nix-ssd setup: @build mode (not world-writable)" "$(stat -c %a "$top/@build")" 755
    for s in @kt-upper @kt-work; do
        btrfs -q subvolume create "$top/$s" >/dev/null || { fail "create subvolume $s"; return 1; }
    done
    for s in @overlay @build @cache @kt-upper @kt-work; do echo "$s" >"$top/$s/.kt-subvol"; done
    umount "$top"
    pass "btrfs NIX_SSD on $KT_LOOP with @overlay{upper,work,state} @build @cache"

    # --- generator run A: config pointing at the loop device and a temp mount point
    local rootA="$KT_DIR/rootA" G="$KT_DIR/genA"
    mkdir -p "$rootA/etc/systemd"
    cat >"$rootA/etc/systemd/nix-ssd-generator.conf" <<EOF
[nix-ssd]
device = $KT_LOOP
mount-point = $KT_MP
EOF
    gen_run "$G" "$rootA" "ro quiet"; local rc=$?
    check_eq "generator (config: device=$KT_LOOP mount-point=$KT_MP) exit status" "$rc" 0
    sed 's/^/  | /' "$G.log"
    local ov bu
    ov=$(systemd-escape -p --suffix=mount "$KT_MP/overlay"); bu=$(systemd-escape -p --suffix=mount "$KT_MP/build")
    check "genA: $ov generated" test -f "$G/normal/$ov"
    check "genA: $bu generated" test -f "$G/normal/$bu"
    check "genA: nix-ssd.service generated" test -f "$G/normal/nix-ssd.service"
    check "genA: no multi-user.target.wants/ link (only nix-daemon waits for the SSD)" test ! -e "$G/normal/multi-user.target.wants"
    check "genA: nix-daemon.service.d/50-nix-ssd.conf" test -f "$G/normal/nix-daemon.service.d/50-nix-ssd.conf"
    check "genA: nix-daemon.socket.d/50-nix-ssd.conf" test -f "$G/normal/nix-daemon.socket.d/50-nix-ssd.conf"
    local devdrop; devdrop="$(systemd-escape -p --suffix=device "$KT_LOOP").d/50-device-timeout.conf"
    check "genA: $devdrop" test -f "$G/normal/$devdrop"

    # --- mount exactly what the units say
    mount_units "$G" "$KT_LOOP"

    # --- activate args from the generated service, as systemd would split them
    if py execstart "$G/normal/nix-ssd.service" >"$KT_DIR/activate.args"; then
        pass "nix-ssd.service ExecStart= parsed: $(tr '\n' ' ' <"$KT_DIR/activate.args")"
    else fail "nix-ssd.service ExecStart= parse"; return 1; fi
    check_eq "ExecStart= verb" "$(sed -n 2p "$KT_DIR/activate.args")" activate
    KT_ENVFILE=""
    if [[ -f "$G/normal/nix-daemon.service.d/50-nix-ssd.conf" ]]; then
        KT_ENVFILE=$(py unit "$G/normal/nix-daemon.service.d/50-nix-ssd.conf" Service EnvironmentFile)
        KT_ENVFILE=${KT_ENVFILE#-}
    fi
    export KT_ENVFILE
    if [[ -n "$KT_ENVFILE" ]]; then
        check_has "env file $KT_ENVFILE is among activate args" "$(cat "$KT_DIR/activate.args")" "$KT_ENVFILE"
    else fail "nix-daemon.service.d/50-nix-ssd.conf has EnvironmentFile="; fi

    # --- activate scenarios, each in a fresh nested mount namespace
    if ! mountpoint -q "$KT_MP/overlay" || [[ ! -d "$KT_MP/overlay/work" ]]; then
        fail "activate scenarios not run: @overlay is not mounted on $KT_MP/overlay (see failures above)"
        return 0
    fi
    local sc
    for sc in positive missing_work missing_db separate_subvols; do
        echo "--- scenario $sc"
        if [[ $sc == missing_work ]]; then mv "$KT_MP/overlay/work" "$KT_MP/overlay/work.kt-away"; fi
        unshare --mount --propagation private --pid --fork --mount-proc bash "$SELF" --scenario "$sc" ||
            fail "scenario $sc exited $?"
        if [[ $sc == missing_work ]]; then mv "$KT_MP/overlay/work.kt-away" "$KT_MP/overlay/work"; fi
    done

    # --- generator run B: default config -> LABEL form
    local rootB="$KT_DIR/rootB" GB="$KT_DIR/genB"
    mkdir -p "$rootB"
    gen_run "$GB" "$rootB" "ro quiet"; rc=$?
    check_eq "generator (default config) exit status" "$rc" 0
    sed 's/^/  | /' "$GB.log"
    local u='mnt-nix\x2dssd-overlay.mount'
    if [[ -f "$GB/normal/$u" ]]; then
        pass "genB: $u generated"
        check_eq "genB: What=" "$(py unit "$GB/normal/$u" Mount What)" /dev/disk/by-label/NIX_SSD
        check_eq "genB: Where=" "$(py unit "$GB/normal/$u" Mount Where)" /mnt/nix-ssd/overlay
        check_eq "genB: Type=" "$(py unit "$GB/normal/$u" Mount Type)" btrfs
        check_eq "genB: Options=" "$(py unit "$GB/normal/$u" Mount Options)" subvol=@overlay,noatime,nosuid,nodev,nofail
    else fail "genB: $u generated"; fi
    check "genB: mnt-nix\\x2dssd-build.mount" test -f "$GB/normal/mnt-nix\\x2dssd-build.mount"
    check "genB: dev-disk-by\\x2dlabel-NIX_SSD.device.d/50-device-timeout.conf" \
        test -f "$GB/normal/dev-disk-by\\x2dlabel-NIX_SSD.device.d/50-device-timeout.conf"
    local bl; bl=$(blkid -c /dev/null -L NIX_SSD 2>/dev/null)
    info "blkid -L NIX_SSD -> '${bl}' (libblkid label lookup, no udev needed)"
    if [[ -e /dev/disk/by-label/NIX_SSD && "$(readlink -f /dev/disk/by-label/NIX_SSD)" == "$KT_LOOP" ]]; then
        local lm="$KT_DIR/labelmnt"; mkdir -p "$lm"
        if mount -t btrfs -o subvol=@overlay,noatime,nosuid,nodev,nofail /dev/disk/by-label/NIX_SSD "$lm"; then
            check "LABEL form: /dev/disk/by-label/NIX_SSD mounts @overlay" grep -qx @overlay "$lm/.kt-subvol"
            umount "$lm"
        else fail "LABEL form: mount /dev/disk/by-label/NIX_SSD"; fi
    else
        info "LABEL form mount skipped: no udev-made /dev/disk/by-label/NIX_SSD -> $KT_LOOP (udev not running here)"
    fi
    return 0
}

# ============================================================ outer =========
outer_main() {
    need_root 1
    local missing=()
    command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
    command -v python3 >/dev/null || missing+=(python3)
    command -v losetup >/dev/null || missing+=(mount)
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }
    fi
    for fs in btrfs overlay; do
        grep -qw "$fs" /proc/filesystems || modprobe "$fs" 2>/dev/null || true
    done

    export KT_GEN=${NIX_SSD_GENERATOR:-$REPO/target/release/nix-ssd-generator}
    export KT_NSSD=${NIX_SSD_BIN:-$REPO/target/release/nix-ssd}
    if [[ ! -x "$KT_GEN" || ! -x "$KT_NSSD" ]] && [[ -z "${NO_BUILD:-}" ]]; then
        (cd "$REPO" && cargo build --release) || true
    fi

    # The rest in a private mount namespace with its own /var/lib: `nix-ssd setup` enrols the
    # test's SSD there, never on the host.
    if [[ -z "${KT_PRIVATE:-}" ]]; then KT_PRIVATE=1 exec unshare --mount --propagation private bash "$SELF"; fi
    mount -t tmpfs -o mode=0755 kt-varlib /var/lib || { fail "tmpfs on /var/lib"; summary; return; }

    exec 9>/var/tmp/nix-ssd-kernel-test.lock
    flock 9

    export KT_DIR; KT_DIR=$(mktemp -d /var/tmp/nix-ssd-kt.XXXXXX)
    export CHECK_RESULTS="$KT_DIR/results"; : >"$CHECK_RESULTS"
    export KT_MP="$KT_DIR/mnt/nix-ssd"
    export KT_LOOP=""
    MADE_NIX=0; local img="$KT_DIR/nix-ssd.img"

    cleanup() {
        if [[ -n "$KT_LOOP" ]]; then losetup -d "$KT_LOOP" 2>/dev/null; fi
        if ((MADE_NIX)); then rmdir /nix 2>/dev/null; fi
        # no mounts can remain on the host: they all lived in the namespaces
        if ! grep -q " $KT_DIR" /proc/self/mountinfo; then rm -rf "$KT_DIR"; fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    local ok=1
    for b in "$KT_GEN" "$KT_NSSD"; do
        if [[ -x "$b" ]]; then pass "binary $b present"; else fail "binary $b missing (cargo build --release failed?)"; ok=0; fi
    done
    if ((ok)); then
        truncate -s 512M "$img"
        if "$KT_NSSD" setup "$img" 2>"$KT_DIR/setup.log" && KT_LOOP=$(losetup --show -f "$img"); then
            pass "sparse image + nix-ssd setup + losetup ($KT_LOOP)"
            check "nix-ssd setup labelled it NIX_SSD" test "$(blkid -p -s LABEL -o value "$img")" = NIX_SSD
            if "$KT_NSSD" setup "$img" 2>"$KT_DIR/setup2.log"; then fail "nix-ssd setup refuses a device with a file system"
            else check_has "nix-ssd setup refuses a device with a file system" "$(cat "$KT_DIR/setup2.log")" "already holds a btrfs"; fi
            adopt_test "$KT_DIR/adopt.img"
            if [[ ! -e /nix ]]; then mkdir /nix && MADE_NIX=1; fi
            unshare --mount --propagation private bash "$SELF" --ns
            local rc=$?
            ((rc == 0)) || fail "namespace stage exited $rc"
        else
            fail "mkfs.btrfs / losetup"
        fi
    fi

    if grep -q '^FAIL' "$CHECK_RESULTS"; then
        echo "=== failures"
        grep '^FAIL' "$CHECK_RESULTS" | sed 's/^FAIL /  /'
        local d f
        for d in "$KT_DIR/genA" "$KT_DIR/genB"; do
            [[ -d "$d" ]] || continue
            echo "=== generated files in $d (generator log: $d.log)"
            while IFS= read -r f; do
                if [[ -L "$f" ]]; then echo "--- ${f#$d/} -> $(readlink "$f")"
                else echo "--- ${f#$d/}"; cat "$f"; fi
            done < <(find "$d" \( -type f -o -type l \) | sort)
        done
    fi
    summary
}

case "${1:-}" in
    --ns) ns_main ;;
    --scenario) "scenario_$2" ;;
    *) outer_main ;;
esac

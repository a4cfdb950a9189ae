use super::*;

fn fixture(name: &str) -> State {
    let text = match name {
        "start-writethrough" => include_str!("../../../tests/lvm/fixtures/start-writethrough.txt"),
        "start-pool-unattached" => include_str!("../../../tests/lvm/fixtures/start-pool-unattached.txt"),
        "uncached" => include_str!("../../../tests/lvm/fixtures/uncached.txt"),
        "pool-created" => include_str!("../../../tests/lvm/fixtures/pool-created.txt"),
        "cached-writeback" => include_str!("../../../tests/lvm/fixtures/cached-writeback.txt"),
        "done" => include_str!("../../../tests/lvm/fixtures/done.txt"),
        _ => unreachable!(),
    };
    parse_capture(text).unwrap()
}

fn req() -> Request {
    Request {
        vg: "vg0".into(),
        pv: "/dev/vdc".into(),
        lv: None,
        pool: None,
        nix_name: "nix".into(),
        cache_size: 256 << 20,
        meta_size: 16 << 20,
        nix_size: 1 << 30,
    }
}

fn shown(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sizes() {
    assert_eq!(parse_size("256M"), Ok(256 << 20));
    assert_eq!(parse_size("16m"), Ok(16 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("2T"), Ok(2 << 40));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert!(parse_size("0").is_err());
    // lvm2 takes fractions: 1.5G is 1536 MiB (found by a user trying `--cache-size 1.5G`)
    assert_eq!(parse_size("1.5G"), Ok(3 << 29));
    assert_eq!(lvm_size(parse_size("1.5G").unwrap()), "1536m");
    assert_eq!(parse_size("0.25T"), Ok(256 << 30));
    assert_eq!(parse_size("1.999999999t"), Ok((2 << 40) - 1100));
    assert_eq!(parse_size("1.5"), Ok(1), "a fraction of a byte is rounded down");
    for bad in ["1.", ".5G", "1.2.3G", "1..5G", "1.5.G", "", "G", "1.0000000001G"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
    assert!(parse_size("0.0G").is_err());
    assert!(parse_size("12Q").is_err());
    assert!(parse_size("99999999999T").is_err());
    assert_eq!(lvm_size(256 << 20), "256m");
    assert_eq!(lvm_size(1 << 30), "1g");
    assert_eq!(lvm_size(1536 << 20), "1536m");
    assert_eq!(lvm_size(1000), "1000b");
}

#[test]
fn parses_captured_reports() {
    let s = fixture("start-writethrough");
    assert_eq!(s.pvs.len(), 2);
    assert_eq!(
        s.pvs[1],
        Pv { name: "/dev/vdc".into(), vg: "vg0".into(), pe_count: 383, pe_alloc: 260, extent_size: 4 << 20 }
    );
    let data = s.segs.iter().find(|g| g.lv == "data").unwrap();
    assert_eq!(
        (data.segtype.as_str(), data.cache_mode.as_str(), data.pool_lv.as_str()),
        ("cache", "writethrough", "[cpool_cpool]")
    );
    assert!(data.active);
    assert_eq!(data.ranges, vec![Range { dev: "data_corig".into(), start: 0, end: 255 }]);
    let cdata = s.segs.iter().find(|g| g.lv == "[cpool_cpool_cdata]").unwrap();
    assert_eq!(cdata.ranges, vec![Range { dev: "/dev/vdc".into(), start: 4, end: 259 }]);
    assert_eq!(extents_on(&s, "[cpool_cpool]", "/dev/vdc"), 0);
    assert_eq!(extents_on(&s, "cpool_cpool_cdata", "/dev/vdc"), 256);
    for f in ["start-pool-unattached", "uncached", "pool-created", "cached-writeback", "done"] {
        assert!(fixture(f).segs.iter().any(|g| g.lv == "data"), "{f}");
    }
}

#[test]
fn parse_errors_name_the_line() {
    let e = parse_lvs("  LVM2_VG_NAME='vg0' garbage\n").unwrap_err();
    assert!(matches!(e, LvmError::Parse { what: "lvs", line: 1, .. }), "{e}");
    let e = parse_pvs("  LVM2_PV_NAME='/dev/vdb'\n").unwrap_err();
    assert!(e.to_string().contains("no field vg_name"), "{e}");
    assert_eq!(parse_pvs("\n# comment\n").unwrap(), vec![]);
}

#[test]
fn plan_from_the_starting_layout() {
    let p = plan(&req(), &fixture("start-writethrough")).unwrap();
    assert_eq!(
        shown(&p),
        [
            "lvconvert -y --uncache vg0/data",
            "lvcreate -y --type cache-pool -L 256m --poolmetadatasize 16m -n cpool vg0 /dev/vdc",
            "lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data",
            "lvcreate -y -L 1g -n nix vg0 /dev/vdc",
            "nix-ssd setup /dev/vg0/nix",
        ]
    );
    assert_eq!(p.old_pool, Some(("[cpool_cpool]".into(), "writethrough".into())));
    let notes = p.notes.join("\n");
    assert!(
        notes.contains("vg0/data is cached by [cpool_cpool] in writethrough mode (258 extents of it on /dev/vdc)"),
        "{notes}"
    );
    // 123 free + 256 cdata + 2 cmeta + 2 pmspare (the last pool takes it along)
    assert!(notes.contains("123 free now, 383 after uncaching; the plan uses 328 (cache 64 + metadata 4 + metadata spare growth 4 + nix 256), 55 stay free"), "{notes}");
    assert!(notes.contains("is active"), "{notes}");
    assert_eq!(p.steps[4].argv(), ["nix-ssd", "setup", "/dev/vg0/nix"]);
}

#[test]
fn measured_free_space_matches_lvm() {
    // the capture's `lvcreate -L 1G` after the plan said "256 extents needed, but only 55 available"
    let mut r = req();
    r.nix_size = (1 << 30) + (55 << 22);
    assert!(plan(&r, &fixture("start-writethrough")).is_ok());
    r.nix_size += 1;
    let e = plan(&r, &fixture("start-writethrough")).unwrap_err();
    assert!(matches!(e, LvmError::NoSpace { need: 384, avail: 383, free: 123, freed: 260, .. }), "{e}");
}

#[test]
fn too_big_says_why() {
    let mut r = req();
    r.nix_size = 2 << 30;
    let e = plan(&r, &fixture("start-writethrough")).unwrap_err().to_string();
    assert_eq!(
        e,
        "not enough free space on /dev/vdc: the plan needs 584 extents (cache 64 + metadata 4 + metadata spare growth 4 + nix 512), 383 are free after uncaching (123 free now + 260 of the old cache pool); extent size 4 MiB"
    );
}

#[test]
fn uncached_lv_needs_lv_and_skips_uncache() {
    let s = fixture("uncached");
    assert!(matches!(plan(&req(), &s), Err(LvmError::NoCachedLv(_))));
    let r = Request { lv: Some("data".into()), ..req() };
    let p = plan(&r, &s).unwrap();
    assert_eq!(p.steps.len(), 4);
    assert!(matches!(p.steps[0], Step::CreatePool { .. }));
    assert_eq!(p.pool, "cpool");
    assert!(p.notes.iter().any(|n| n.contains("383 free now; the plan uses 328")), "{:?}", p.notes);
}

#[test]
fn unattached_pool_is_reused() {
    let r = Request { lv: Some("data".into()), ..req() };
    let p = plan(&r, &fixture("pool-created")).unwrap();
    assert_eq!(
        shown(&p),
        [
            "lvconvert -y --type cache --cachepool vg0/cpool --cachemode writeback vg0/data",
            "lvcreate -y -L 1g -n nix vg0 /dev/vdc",
            "nix-ssd setup /dev/vg0/nix",
        ]
    );
}

#[test]
fn refusals() {
    let s = fixture("start-writethrough");
    assert!(matches!(plan(&Request { vg: "nope".into(), ..req() }, &s), Err(LvmError::NoVg(_))));
    let e = plan(&Request { pv: "/dev/vdz".into(), ..req() }, &s).unwrap_err().to_string();
    assert!(
        e.contains("/dev/vdz is not a physical volume of vg0 (`pvs` lists: /dev/vdb (vg0), /dev/vdc (vg0))"),
        "{e}"
    );
    assert!(matches!(plan(&Request { lv: Some("nope".into()), ..req() }, &s), Err(LvmError::NoLv { .. })));
    // hidden LVs are not LVs to cache
    assert!(matches!(plan(&Request { lv: Some("[data_corig]".into()), ..req() }, &s), Err(LvmError::NoLv { .. })));
    assert!(matches!(plan(&Request { meta_size: 1 << 20, ..req() }, &s), Err(LvmError::MetaTooSmall(_))));
    let e = plan(&Request { nix_name: "data".into(), ..req() }, &s).unwrap_err().to_string();
    assert!(e.contains("vg0/data exists already; remove it"), "{e}");
    // after the plan: the Nix LV is there
    let e = plan(&req(), &fixture("done")).unwrap_err().to_string();
    assert!(e.contains("vg0/nix exists already"), "{e}");
    // a plain LV and an unattached pool of that name: reused (the old 1 GiB pool leaves 123 extents)
    let r = Request { lv: Some("data".into()), pool: Some("cpool".into()), nix_size: 123 << 22, ..req() };
    assert_eq!(plan(&r, &fixture("start-pool-unattached")).unwrap().steps.len(), 3);
    let r = Request { nix_size: 124 << 22, ..r };
    assert!(matches!(plan(&r, &fixture("start-pool-unattached")), Err(LvmError::NoSpace { need: 124, .. })));
    let mut s2 = fixture("start-writethrough");
    s2.segs.push(Seg { lv: "other".into(), segtype: "linear".into(), ranges: vec![], ..s2.segs[0].clone() });
    assert!(matches!(plan(&Request { pool: Some("other".into()), ..req() }, &s2), Err(LvmError::Exists { .. })));
    // the old pool's own name is free after uncaching
    assert!(plan(&Request { pool: Some("cpool_cpool".into()), ..req() }, &s).is_ok());
    // a thin LV is not handled
    let mut s3 = fixture("uncached");
    s3.segs[0].segtype = "thin".into();
    assert!(matches!(plan(&Request { lv: Some("data".into()), ..req() }, &s3), Err(LvmError::Unsupported { .. })));
}

#[test]
fn several_cached_lvs_need_lv() {
    let mut s = fixture("start-writethrough");
    let data = s.segs.iter().find(|g| g.lv == "data").unwrap().clone();
    s.segs.push(Seg { lv: "home".into(), ..data });
    let e = plan(&req(), &s).unwrap_err().to_string();
    assert_eq!(e, "vg0 has several cached LVs (data, home); choose one with --lv");
    assert!(plan(&Request { lv: Some("data".into()), ..req() }, &s).is_ok());
}

#[test]
fn writeback_is_flushed_note_and_spare_kept_with_other_pools() {
    let s = fixture("cached-writeback");
    let p = plan(&req(), &s).unwrap();
    assert!(p.notes.iter().any(|n| n.contains("dirty blocks")), "{:?}", p.notes);
    // another pool in the VG keeps the 4-extent spare: nothing to grow for 16M metadata
    let mut s2 = s.clone();
    s2.segs.push(Seg { lv: "tpool".into(), segtype: "thin-pool".into(), ranges: vec![], ..s.segs[0].clone() });
    let p2 = plan(&req(), &s2).unwrap();
    assert!(p2.notes.iter().any(|n| n.contains("(cache 64 + metadata 4 + nix 256)")), "{:?}", p2.notes);
}

#[test]
fn failure_help() {
    let r = req();
    let p = plan(&r, &fixture("start-writethrough")).unwrap();
    let (state, next) = after_failure(&p, &r, 0);
    assert!(state.contains("still cached by [cpool_cpool] (writethrough)"), "{state}");
    assert_eq!(next.len(), 1);
    let (state, next) = after_failure(&p, &r, 1);
    assert!(state.contains("vg0/data is NOT cached"), "{state}");
    assert_eq!(next[0], p.steps[1].to_string());
    assert_eq!(next.len(), 5);
    assert!(next[4].contains("nix-ssd lvm-plan --vg vg0 --pv /dev/vdc --lv data --pool cpool --nix-name nix --cache-size 256M --meta-size 16M --nix-size 1G --execute"), "{}", next[4]);
    let (state, next) = after_failure(&p, &r, 2);
    assert!(state.contains("vg0/cpool exists, unattached"), "{state}");
    assert_eq!(next[0], format!("re-attach with: {}", p.steps[2]));
    let (_, next) = after_failure(&p, &r, 3);
    assert_eq!(next, ["lvcreate -y -L 1g -n nix vg0 /dev/vdc", "nix-ssd setup /dev/vg0/nix"]);
    let (_, next) = after_failure(&p, &r, 4);
    assert!(next[0].starts_with("nix-ssd setup --force /dev/vg0/nix"));
}

#[test]
fn verify_after() {
    let r = req();
    let p = plan(&r, &fixture("start-writethrough")).unwrap();
    let ok = verify(&p, &r, &fixture("done")).unwrap();
    assert!(ok.starts_with("vg0/data cached by [cpool_cpool] in writeback (64 extents on /dev/vdc)"), "{ok}");
    assert!(verify(&p, &r, &fixture("start-writethrough")).is_err());
    assert!(verify(&p, &r, &fixture("cached-writeback")).unwrap_err().to_string().contains("vg0/nix is not on"));
}

#[test]
fn versions() {
    assert!(!older_than_measured("2.03.31(2) (2025-02-27)"));
    assert!(older_than_measured("2.02.183(2) (2018-12-07)"));
    assert!(!older_than_measured("garbage"));
}

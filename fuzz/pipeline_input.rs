// Decodes a fuzz input into the generator's `Inputs` (shared by the pipeline target and
// render-samples). Fields are separated by the byte 0x1e; missing fields are absent inputs.
//   0 flags: bit0 the kernel command line is unreadable, bit1 the main config is unreadable,
//            bit2 no main config, bit3 the drop-in is unreadable
//   1 kernel command line   2 main config text   3 drop-in file name   4 drop-in text
//   5 `blkid -o export` text   6 udev database file   7 blkid cache file
use nix_ssd_generator::generator::blkid;
use nix_ssd_generator::generator::plan::{ConfigSource, Inputs};

pub fn decode(data: &[u8]) -> Inputs {
    let fields: Vec<String> = data.split(|b| *b == 0x1e).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let get = |i: usize| fields.get(i).cloned();
    let flags = get(0).and_then(|f| f.bytes().next()).unwrap_or(0);
    let cmdline = if flags & 1 != 0 {
        Err("/proc/cmdline: No such file or directory (os error 2)".to_string())
    } else {
        Ok(get(1).unwrap_or_default())
    };
    let mut config_files = Vec::new();
    if flags & 4 == 0 {
        let text =
            if flags & 2 != 0 { Err("Is a directory (os error 21)".into()) } else { Ok(get(2).unwrap_or_default()) };
        config_files.push(ConfigSource { path: "/etc/systemd/nix-ssd-generator.conf".into(), text });
    }
    if let Some(name) = get(3) {
        let text =
            if flags & 8 != 0 { Err("Permission denied (os error 13)".into()) } else { Ok(get(4).unwrap_or_default()) };
        // A file name as readdir gives them: no '/', at most NAME_MAX (255) bytes with ".conf".
        let mut name = name.replace(['/', '\0'], "_");
        while name.len() > 250 {
            name.pop();
        }
        config_files.push(ConfigSource { path: format!("/etc/systemd/nix-ssd-generator.conf.d/{name}.conf"), text });
    }
    let mut devices = Vec::new();
    let mut device_notes = Vec::new();
    if let Some(t) = get(6) {
        let (d, e) = blkid::parse_udev_db(&t);
        devices.push(d);
        device_notes.extend(e.iter().map(|e| format!("/run/udev/data/b8:1: {e}; skipped")));
    }
    if let Some(t) = get(7) {
        let (d, e) = blkid::parse_cache(&t);
        devices.extend(d);
        device_notes.extend(e.iter().map(|e| format!("/run/blkid/blkid.tab: {e}; skipped")));
    }
    if let Some(t) = get(5) {
        let (d, e) = blkid::parse_export(&t);
        devices.extend(d);
        device_notes.extend(e.iter().map(|e| format!("export: {e}; skipped")));
    }
    Inputs { cmdline, config_files, devices, device_notes, enrolled: Vec::new() }
}

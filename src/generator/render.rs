//! A [`Plan`] → the files the generator writes, as values. Unit text comes from
//! `unit-templates/`; every value is escaped for the place it goes.
use super::config::Mode;
use super::escape::{exec_word, unit_value};
use super::plan::{NIX_CLIENT_SERVICES, PINS_SERVICE, Plan, Role, SERVICE};
use crate::paths::{CLI, CLIENT_ENV, ENV_FILE, PIN_STAGING};

/// One file in the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// Relative to the output directory.
    pub path: String,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Symlink(String),
}

const MOUNT: &str = include_str!("../../unit-templates/subvolume.mount.in");
const DEVICE_TIMEOUT: &str = include_str!("../../unit-templates/50-device-timeout.conf.in");
const SERVICE_T: &str = include_str!("../../unit-templates/nix-ssd.service.in");
const DAEMON_SERVICE: &str = include_str!("../../unit-templates/nix-daemon.service.conf.in");
const DAEMON_SOCKET: &str = include_str!("../../unit-templates/nix-daemon.socket.conf.in");
const NIX_CLIENT: &str = include_str!("../../unit-templates/nix-client.service.conf.in");
const PINS_T: &str = include_str!("../../unit-templates/nix-ssd-pins.service.in");

/// Fills `@KEY@` placeholders. A line that is only a placeholder whose value is empty is
/// dropped (optional settings such as `SourcePath=`).
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    for line in template.lines() {
        let mut l = line.to_string();
        for (k, v) in vars {
            l = l.replace(&format!("@{k}@"), v);
        }
        if l.is_empty() && !line.is_empty() {
            continue;
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn text(path: String, body: String) -> OutFile {
    OutFile { path, content: Content::Text(body) }
}

fn source_line(p: &Plan) -> String {
    p.source_path.as_ref().map(|s| format!("SourcePath={}", unit_value(s))).unwrap_or_default()
}

/// nix-ssd-pins.service: moves staged pins into the lower store at boot, SSD or not.
fn pins_service(p: &Plan) -> OutFile {
    let vars = [
        ("SOURCE_PATH", source_line(p)),
        ("SERVICE", SERVICE.into()),
        ("STAGING", unit_value(PIN_STAGING)),
        ("EXEC", format!("{} apply-pins", exec_word(CLI))),
    ];
    text(PINS_SERVICE.into(), fill(PINS_T, &vars))
}

/// Renders every file of the plan.
pub fn render(p: &Plan) -> Vec<OutFile> {
    let source = source_line(p);
    let mut files = Vec::new();
    for m in &p.mounts {
        let role = match m.role {
            Role::Overlay => "Nix store upper layer",
            Role::Build => "Nix build directory",
            Role::Cache => "Nix fetcher caches",
        };
        files.push(text(
            m.unit.clone(),
            fill(
                MOUNT,
                &[
                    ("SUBVOLUME", unit_value(&m.subvolume)),
                    ("ROLE", role.into()),
                    ("SOURCE_PATH", source.clone()),
                    ("WHAT", unit_value(&p.what)),
                    ("WHERE", unit_value(&m.target)),
                    ("OPTIONS", unit_value(&m.options())),
                ],
            ),
        ));
    }
    files.push(text(
        format!("{}.d/50-device-timeout.conf", p.device_unit),
        fill(DEVICE_TIMEOUT, &[("TIMEOUT", p.job_timeout())]),
    ));
    let units: Vec<&str> = p.mounts.iter().map(|m| m.unit.as_str()).collect();
    let description = match p.mode {
        Mode::Overlay => "Stack the Nix SSD overlay on /nix/store",
        Mode::Build => "Put Nix builds on the Nix SSD",
    };
    let exec: Vec<String> = p.activate_argv().iter().map(|w| exec_word(w)).collect();
    files.push(text(
        SERVICE.into(),
        fill(
            SERVICE_T,
            &[
                ("DESCRIPTION", description.into()),
                ("SOURCE_PATH", source),
                ("MOUNTS", units.join(" ")),
                ("PINS", PINS_SERVICE.into()),
                ("CONDITION", unit_value(&p.primary().target)),
                ("EXEC", exec.join(" ")),
                // At shutdown, after nix-daemon stopped, while the overlay is up: the next boot's
                // default made bootable without the SSD (a pin of a whole system closure into
                // the internal disk can take minutes: systemd's 90 s would cut it), then the
                // pins of systems nothing names dropped, what SSD paths need rooted.
                (
                    "EXEC_STOP",
                    if p.mode == Mode::Overlay {
                        format!("ExecStop={} at-shutdown\nTimeoutStopSec=15min", exec_word(CLI))
                    } else {
                        String::new()
                    },
                ),
            ],
        ),
    ));
    files.push(pins_service(p));
    // No multi-user.target.wants/ link: a target waits for every unit it wants, so the boot
    // would wait for the SSD. nix-daemon's socket and service pull the service in instead.
    let common =
        [("SERVICE", SERVICE.to_string()), ("PINS", PINS_SERVICE.to_string()), ("ENV_FILE", unit_value(ENV_FILE))];
    files.push(text("nix-daemon.service.d/50-nix-ssd.conf".into(), fill(DAEMON_SERVICE, &common)));
    files.push(text("nix-daemon.socket.d/50-nix-ssd.conf".into(), fill(DAEMON_SOCKET, &common)));
    if p.mode == Mode::Overlay {
        let vars = [("SERVICE", SERVICE.to_string()), ("CLIENT_ENV", unit_value(CLIENT_ENV))];
        for u in NIX_CLIENT_SERVICES {
            files.push(text(format!("{u}.d/50-nix-ssd.conf"), fill(NIX_CLIENT, &vars)));
        }
    }
    files
}

//! The one command runner. On failure the error shows the command (long argument lists cut
//! short) and its trimmed stderr.
use std::process::{Command, ExitStatus};

/// Arguments shown in an error before the rest is counted instead.
const SHOWN_ARGS: usize = 12;
/// Characters of stderr kept in an error (the end, where the reason usually is).
const STDERR_KEPT: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Failed { cmd: String, status: String, stderr: String },
}

/// The command as a person would type it, cut after [`SHOWN_ARGS`] arguments.
pub fn shown(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    let args: Vec<_> = cmd.get_args().collect();
    for a in args.iter().take(SHOWN_ARGS) {
        let a = a.to_string_lossy();
        words.push(if a.is_empty() || a.contains([' ', '\'', '"', '\\', '$', '&', '?']) {
            format!("'{}'", a.replace('\'', r"'\''"))
        } else {
            a.into_owned()
        });
    }
    if args.len() > SHOWN_ARGS {
        words.push(format!("… ({} more arguments)", args.len() - SHOWN_ARGS));
    }
    words.join(" ")
}

/// Stderr trimmed: surrounding whitespace off, at most the last [`STDERR_KEPT`] characters.
pub fn trim_stderr(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let n = s.chars().count();
    if n <= STDERR_KEPT { s.to_string() } else { format!("…{}", s.chars().skip(n - STDERR_KEPT).collect::<String>()) }
}

/// Runs `cmd`, capturing its output; its stdout on success.
pub fn output(cmd: &mut Command) -> Result<String, CmdError> {
    let out = cmd.output().map_err(|source| CmdError::Spawn { cmd: shown(cmd), source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(cmd, out.status, &out.stderr))
    }
}

/// [`output`] with `input` on the command's stdin.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> Result<String, CmdError> {
    use std::io::Write;
    use std::process::Stdio;
    let spawn_err = |cmd: &Command, source| CmdError::Spawn { cmd: shown(cmd), source };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_err(cmd, e))?;
    // Written from a thread: a command that prints while it reads would fill its stdout pipe.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| spawn_err(cmd, e))?;
    let written = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
    if !out.status.success() {
        return Err(failed(cmd, out.status, &out.stderr));
    }
    written.map_err(|e| spawn_err(cmd, e))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with this process's stdin/stdout/stderr (its messages reach the operator as they
/// come); Ok if it exits 0.
pub fn status(cmd: &mut Command) -> Result<(), CmdError> {
    let st = cmd.status().map_err(|source| CmdError::Spawn { cmd: shown(cmd), source })?;
    if st.success() { Ok(()) } else { Err(failed(cmd, st, b"")) }
}

/// Runs `cmd` capturing stdout and stderr in full, whatever its exit status (a command whose
/// messages name what it found, such as `nix-store --verify-path`); an error only if it cannot
/// be started.
pub fn outputs(cmd: &mut Command) -> Result<std::process::Output, CmdError> {
    cmd.output().map_err(|source| CmdError::Spawn { cmd: shown(cmd), source })
}

/// Runs `cmd` for what it prints, whatever its exit status (a probe such as `blkid`, which
/// exits 2 when it finds nothing); an error only if it cannot be started.
pub fn probe(cmd: &mut Command) -> Result<String, CmdError> {
    let out = cmd.output().map_err(|source| CmdError::Spawn { cmd: shown(cmd), source })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`output`] within `limit`: None when the command was still running then (it is killed).
/// stdout and stderr are drained as it runs, so a chatty command cannot block on a full pipe.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Result<Option<String>, CmdError> {
    use std::io::Read;
    use std::process::Stdio;
    let spawn_err = |cmd: &Command, source| CmdError::Spawn { cmd: shown(cmd), source };
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| spawn_err(cmd, e))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let err = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| spawn_err(cmd, e))? {
            break Some(st);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        None => Ok(None),
        Some(st) if st.success() => Ok(Some(String::from_utf8_lossy(&out).into_owned())),
        Some(st) => Err(failed(cmd, st, &err)),
    }
}

fn failed(cmd: &Command, status: ExitStatus, stderr: &[u8]) -> CmdError {
    CmdError::Failed { cmd: shown(cmd), status: status.to_string(), stderr: trim_stderr(stderr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_command_and_trims() {
        let mut c = Command::new("nix-store");
        c.args(["--query", "a b"]).args((0..20).map(|i| format!("/nix/store/p{i}")));
        let s = shown(&c);
        assert!(s.starts_with("nix-store --query 'a b' /nix/store/p0 "), "{s}");
        assert!(s.ends_with("… (10 more arguments)"), "{s}");
        assert_eq!(trim_stderr(b"  error: x\n\n"), "error: x");
        let long = "e".repeat(5000);
        assert_eq!(trim_stderr(long.as_bytes()).chars().count(), STDERR_KEPT + 1);
    }

    #[test]
    fn failure_says_what_ran_and_why() {
        let e = output(Command::new("sh").args(["-c", "echo nope >&2; exit 3"])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("`sh -c 'echo nope >&2; exit 3'` failed (exit status: 3): nope"), "{msg}");
        assert!(matches!(output(&mut Command::new("/nonexistent/x")), Err(CmdError::Spawn { .. })));
        assert_eq!(output(Command::new("sh").args(["-c", "echo hi"])).unwrap(), "hi\n");
    }

    #[test]
    fn input_reaches_stdin_even_when_it_is_larger_than_a_pipe() {
        let big = "x".repeat(1 << 20);
        assert_eq!(output_with_input(Command::new("wc").arg("-c"), big.as_bytes()).unwrap().trim(), "1048576");
        let e = output_with_input(Command::new("sh").args(["-c", "cat >/dev/null; echo bad >&2; exit 4"]), b"in")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("failed (exit status: 4): bad"), "{e}");
    }

    #[test]
    fn output_within_a_limit_or_killed() {
        let out =
            output_within(Command::new("sh").args(["-c", "echo hi; echo x >&2"]), std::time::Duration::from_secs(5));
        assert_eq!(out.unwrap().as_deref(), Some("hi\n"));
        let t0 = std::time::Instant::now();
        let slow = output_within(Command::new("sleep").arg("30"), std::time::Duration::from_millis(200));
        assert_eq!(slow.unwrap(), None);
        assert!(t0.elapsed() < std::time::Duration::from_secs(5), "killed at the limit");
        assert!(output_within(&mut Command::new("false"), std::time::Duration::from_secs(5)).is_err());
    }
}

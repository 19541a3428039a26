//! One hook command run: `sh -c 'CMD "$@"' faxmesh-hook ARGS...` with the
//! JSON on stdin, as HylaFAX's FaxDispatch gets its fax. CMD may carry its
//! own arguments (`mail -s fax ops@example.net`); the event's paths follow
//! them. Exit 0 is a delivery; another exit, or no exit within the time
//! limit (then the command's whole process group is killed), is a failure.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::delivery::DeliveryError;

/// `$0` of the shell, shown by `ps` and in the shell's own error messages.
const ARGV0: &str = "faxmesh-hook";

/// How much of the command's stderr is kept for the log line (its end,
/// where the reason for a failure usually is).
const STDERR_KEPT: usize = 2048;

/// How long stderr is still read once the command has exited: a
/// background process it started may hold the pipe open for good.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// Runs `cmd` once with `body` on stdin and `args` after it.
pub(crate) async fn run(
    cmd: &str,
    body: &[u8],
    args: &[PathBuf],
    limit: Duration,
) -> Result<(), DeliveryError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} \"$@\""))
        .arg(ARGV0)
        .args(args)
        .stdin(Stdio::piped())
        // A hook's output must not mix with the device's own (one line per
        // fax on stdout); what it says on stderr is logged when it fails.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills the command and
        // everything it started, not only the shell.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(DeliveryError::Spawn)?;
    let group = KillGroup(child.id());
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let mut tail = Vec::new();
    let finished = tokio::time::timeout(limit, async {
        let feed = async {
            if let Some(mut stdin) = stdin {
                // A command that does not read its stdin closes the pipe
                // early (EPIPE): that is its choice, not a failure.
                let _ = stdin.write_all(body).await;
            }
        };
        let exited = async { tokio::join!(feed, child.wait()).1 };
        let read = read_tail(stderr, &mut tail);
        tokio::pin!(exited, read);
        tokio::select! {
            _ = &mut read => exited.await,
            status = &mut exited => {
                let _ = tokio::time::timeout(STDERR_GRACE, read).await;
                status
            }
        }
    })
    .await;
    let stderr = shown(&tail);
    match finished {
        Ok(Ok(status)) => {
            group.disarm();
            if status.success() {
                Ok(())
            } else {
                let exit = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(signal)) => format!("signal {signal}"),
                    (None, None) => status.to_string(),
                };
                Err(DeliveryError::Exit { exit, stderr })
            }
        }
        Ok(Err(e)) => Err(DeliveryError::Wait(e)),
        Err(_) => {
            drop(group);
            // Reaps the shell the group kill ended.
            let _ = child.wait().await;
            Err(DeliveryError::CommandTimeout { limit, stderr })
        }
    }
}

/// Reads a pipe to its end, keeping its last [`STDERR_KEPT`] bytes.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, tail: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_KEPT {
            tail.drain(..tail.len() - STDERR_KEPT);
        }
    }
}

/// The end of the command's stderr as one line for the log.
fn shown(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" | ")
}

/// Kills the command's process group when dropped armed: on a timeout, and
/// when the delivery is abandoned (the notifier stopping) while the command
/// still runs.
struct KillGroup(Option<u32>);

impl KillGroup {
    /// The command exited: whatever it left running in the background is
    /// its own business, and its group id may soon belong to another.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|id| i32::try_from(id).ok()) {
            // SAFETY: kill(2) takes plain integers and touches no memory of
            // ours. The shell has not been reaped (the group is armed until
            // it is), so its pid, which is the group's id, still names it.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_now(
        cmd: &str,
        body: &[u8],
        args: &[PathBuf],
        limit: Duration,
    ) -> Result<(), DeliveryError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(run(cmd, body, args, limit))
    }

    #[test]
    fn the_command_gets_its_own_arguments_then_the_paths_and_the_json_on_stdin() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let out = dir.path().join("out");
        let cmd = format!(
            "f() {{ printf '%s\\n' \"$@\" > '{}.args'; cat > '{}.json'; }}; f first",
            out.display(),
            out.display()
        );
        let paths = [PathBuf::from("/in/a b.tif"), PathBuf::from("/in/a.pdf")];
        run_now(&cmd, br#"{"pages":2}"#, &paths, Duration::from_secs(10)).expect("delivered");
        let args = std::fs::read_to_string(out.with_extension("args")).expect("args");
        assert_eq!(args, "first\n/in/a b.tif\n/in/a.pdf\n");
        let json = std::fs::read_to_string(out.with_extension("json")).expect("json");
        assert_eq!(json, r#"{"pages":2}"#);
    }

    #[test]
    fn a_failing_command_reports_its_exit_and_the_end_of_its_stderr() {
        let err = run_now(
            "echo starting >&2; echo 'no route to printer' >&2; exit 3",
            b"{}",
            &[],
            Duration::from_secs(10),
        )
        .expect_err("exit 3");
        assert_eq!(
            err.to_string(),
            "exit code 3; stderr: starting | no route to printer"
        );
    }

    #[test]
    fn a_command_past_its_time_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let pid_file = dir.path().join("sleeper.pid");
        let started = std::time::Instant::now();
        let err = run_now(
            &format!("sleep 30 & echo $! > '{}'; wait", pid_file.display()),
            b"{}",
            &[],
            Duration::from_millis(300),
        )
        .expect_err("too slow");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not waited out: {:?}",
            started.elapsed()
        );
        assert!(
            err.to_string().starts_with("did not finish within 300ms"),
            "{err}"
        );
        // The background sleep was in the group, so it is gone too.
        let pid = std::fs::read_to_string(&pid_file).expect("pid");
        let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while proc.exists() && !is_zombie(&proc) {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep {pid} still runs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn is_zombie(proc: &std::path::Path) -> bool {
        std::fs::read_to_string(proc.join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }

    #[test]
    fn a_command_that_ignores_its_stdin_is_fine() {
        let body = vec![b' '; 1 << 20];
        run_now("true", &body, &[], Duration::from_secs(10)).expect("delivered");
    }
}

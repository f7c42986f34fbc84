//! `--net user`: pasta, started by the launcher (outside, in the host's network
//! namespace) and attached to the sandbox's user and network namespaces through
//! descriptors the command's process hands over, so it never races a process that may
//! already have exited. The command starts only once pasta says the namespace is configured
//! (`--pid` on a pipe: pasta writes it after addresses, routes and the link are up),
//! and pasta ends with the sandbox: the launcher stops it, and a parent-death signal
//! covers a launcher killed outright (this pasta never exits on its own).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::plan::network::{Pasta, Publish};
use crate::sys;

pub struct Running {
    pub pid: libc::pid_t,
    stderr: OwnedFd,
    reaped: std::cell::Cell<bool>,
}

const STEP: &str = "--net user (pasta)";
/// pasta configures the namespace in about 20 ms here; a slow, loaded machine gets
/// far longer than that before sbx gives up.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Start pasta for the namespaces behind `netns` and `userns`; returns once the
/// namespace is configured, or with pasta's own words on why it is not.
pub fn start(p: &Pasta, publish: &[Publish], netns: &OwnedFd, userns: &OwnedFd) -> Result<Running> {
    let (ready_r, ready_w) = sys::pipe().map_err(|e| e.at(STEP))?;
    let stderr = sys::memfd(c"sbx-pasta-stderr").map_err(|e| e.at(STEP))?;
    let fd_path = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut cmd = Command::new(&p.program);
    cmd.args(&p.args)
        .arg("--pid")
        .arg(fd_path(&ready_w))
        .arg("--netns")
        .arg(fd_path(netns))
        .arg("--userns")
        .arg(fd_path(userns))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            stderr
                .try_clone()
                .map_err(|e| Error::new(STEP, e.to_string()))?,
        ));
    let keep = vec![ready_w.as_raw_fd(), netns.as_raw_fd(), userns.as_raw_fd()];
    let pid = sys::spawn_helper(&mut cmd, keep)
        .map_err(|e| Error::new(STEP, format!("cannot start {}: {e}", p.program.display())))?;
    drop(ready_w);
    let running = Running {
        pid,
        stderr,
        reaped: std::cell::Cell::new(false),
    };
    match sys::await_ready(ready_r.as_fd(), READY_WITHIN) {
        Ok(()) => Ok(running),
        Err(why) => {
            let status = running.stop();
            Err(running.explain(&why, status, publish))
        }
    }
}

impl Running {
    /// Stop pasta and reap it. SIGKILL: it keeps no state worth a clean exit, and its
    /// SIGTERM path takes tens of milliseconds.
    pub fn stop(&self) -> Option<i32> {
        if self.reaped.replace(true) {
            return None;
        }
        sys::kill(self.pid, libc::SIGKILL);
        sys::waitpid(self.pid, 0).ok().flatten().map(|(_, s)| s)
    }

    /// Whether pasta has exited (reaping it); its wait status if so.
    pub fn exited(&self) -> Option<i32> {
        if self.reaped.get() {
            return None;
        }
        let s = sys::waitpid(self.pid, libc::WNOHANG)
            .ok()
            .flatten()
            .map(|(_, s)| s);
        self.reaped.set(s.is_some());
        s
    }

    /// What pasta printed, trimmed.
    pub fn stderr_text(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let k = sys::pread_some(self.stderr.as_fd(), &mut buf, out.len() as u64);
            if k == 0 || out.len() > 64 * 1024 {
                break;
            }
            out.extend_from_slice(&buf[..k]);
        }
        String::from_utf8_lossy(&out).trim().to_string()
    }

    fn explain(&self, why: &str, status: Option<i32>, publish: &[Publish]) -> Error {
        let text = self.stderr_text();
        let status = status
            .map(|s| format!(" (exit status {})", sys::exit_code(s)))
            .unwrap_or_default();
        // "Failed to bind any port for '-t 127.0.0.1/8080:80', exiting"
        if let Some(p) = publish
            .iter()
            .find(|p| text.contains(&format!("{}'", p.pasta_spec())))
        {
            return Error::new(
                format!("--publish {}", p.origin),
                format!(
                    "host port {} on {} cannot be bound (in use?): pasta: {text}",
                    p.host_port, p.addr
                ),
            );
        }
        let quoted = if text.is_empty() {
            String::new()
        } else {
            format!(": pasta: {text}")
        };
        Error::new(STEP, format!("pasta: {why}{status}{quoted}"))
    }
}

/// The command line pasta gets, for `-v`.
pub fn describe(p: &Pasta) -> String {
    format!("{} {}", p.program.display(), p.args.join(" "))
}

//! `--info-fd` and `--status-fd`: what tools read, as bubblewrap's `--info-fd` and
//! `--json-status-fd` define it, with sbx's failures told apart from the command's.
//!
//! - The info object, once the sandbox is set up: `{"child-pid": PID 1's host pid,
//!   "launcher-pid", "name", "namespaces": {"user": inode, …}}`.
//! - The status object, once it has ended, one of:
//!   - `{"exit_code": N}`: the command ran (execve succeeded) and the sandbox ended
//!     with N (the command's status; 128+S for signal S);
//!   - `{"exit_code": 124, "timed_out": true}`: `--timeout` killed it;
//!   - `{"error": {"step": …, "message": …, "status": 125|126|127}}`: sbx failed to set
//!     the sandbox up (125), or the command could not be executed (126) or found
//!     (127). Never an `exit_code`, so a tool cannot take it for the command's own
//!     125, 126 or 127. Failures before the launch (a bad profile, a missing source)
//!     are reported the same way.
//!
//! A failure inside the sandbox (in PID 1, or in the command's process before its
//! execve) reaches the launcher over a close-on-exec pipe: a successful execve
//! closes it unwritten, so silence means the command ran.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::error::Error;
use crate::sys;

/// The write end of the failure pipe, in the sandbox's processes (-1: none). Kept at
/// a high number so that moving the gate to 3 never lands on it.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
const REPORT_AT: RawFd = 512;
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

/// The descriptor `keep_only_fds` must leave open (-1: none).
pub fn report_fd() -> RawFd {
    REPORT_FD.load(Ordering::Relaxed)
}

/// Before the sandbox's processes are made: the pipe they report a failure on.
/// Returns the launcher's read end; the write end is closed by [`launched`].
pub fn open_report() -> Result<OwnedFd, Error> {
    let (r, w) = sys::pipe_with(libc::O_NONBLOCK).map_err(|e| e.at("--status-fd"))?;
    // Its number stays above what the command's setup moves around; the copy lives
    // until [`launched`] closes it.
    let high = sys::dup_above(w.as_fd(), REPORT_AT).map_err(|e| e.at("--status-fd"))?;
    REPORT_FD.store(std::os::fd::IntoRawFd::into_raw_fd(high), Ordering::Relaxed);
    Ok(r)
}

/// In the launcher, once the sandbox's processes hold the write end.
pub fn launched() {
    let fd = REPORT_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        sys::close_raw(fd);
    }
}

/// In a sandbox process about to exit on `e`: tell the launcher (first one wins).
pub fn report_failure(e: &Error) {
    let fd = report_fd();
    if fd >= 0 {
        let line = serde_json::json!({"step": e.step, "message": e.detail, "status": e.code});
        let _ = sys::write_all(fd, format!("{line}\n").as_bytes());
    }
}

pub fn set_timed_out() {
    TIMED_OUT.store(true, Ordering::Relaxed);
}

/// The failure reported on the pipe, if any (read once the sandbox has ended).
pub fn read_failure(r: &OwnedFd) -> Option<serde_json::Value> {
    let mut buf = vec![0u8; 64 * 1024];
    // The pipe is non-blocking: nothing reported is EAGAIN.
    let n = sys::read_once(r.as_fd(), &mut buf)
        .ok()
        .filter(|n| *n > 0)?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    serde_json::from_str(text.lines().next()?).ok()
}

/// The status object for an ended launch.
pub fn object(code: i32, failure: Option<serde_json::Value>) -> serde_json::Value {
    match failure {
        Some(f) => serde_json::json!({ "error": f }),
        None if TIMED_OUT.load(Ordering::Relaxed) => {
            serde_json::json!({"exit_code": code, "timed_out": true})
        }
        None => serde_json::json!({ "exit_code": code }),
    }
}

/// The status object for sbx's own failure (before or during the launch).
pub fn error_object(e: &Error) -> serde_json::Value {
    serde_json::json!({"error": {"step": e.step, "message": e.detail, "status": e.code}})
}

/// Write one object to `fd` and close it (the reader sees its end).
pub fn write(fd: RawFd, v: &serde_json::Value) {
    let _ = sys::write_all(fd, format!("{v}\n").as_bytes());
    // The caller's descriptor, given to sbx for this one object.
    sys::close_raw(fd);
}

/// `fd` is one sbx may write a status to: open, and not 0–2.
pub fn usable(fd: RawFd) -> bool {
    fd > 2 && sys::fd_is_open(fd)
}

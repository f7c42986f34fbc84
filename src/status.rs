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

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
    let mut fds = [0; 2];
    // SAFETY: a two-element array for pipe2.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(Error::sys("--status-fd", "pipe2", sys::errno()));
    }
    // SAFETY: fresh descriptors owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_DUPFD_CLOEXEC only makes a new descriptor.
    let high = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_DUPFD_CLOEXEC, REPORT_AT) };
    if high < 0 {
        return Err(Error::sys(
            "--status-fd",
            "fcntl(F_DUPFD_CLOEXEC)",
            sys::errno(),
        ));
    }
    REPORT_FD.store(high, Ordering::Relaxed);
    Ok(r)
}

/// In the launcher, once the sandbox's processes hold the write end.
pub fn launched() {
    let fd = REPORT_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the launcher's own copy of the write end.
        unsafe { libc::close(fd) };
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
    // SAFETY: valid buffer; the pipe is non-blocking.
    let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return None;
    }
    let text = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
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
    // SAFETY: the caller's descriptor, given to sbx for this one object.
    unsafe { libc::close(fd) };
}

/// `fd` is one sbx may write a status to: open, and not 0–2.
pub fn usable(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries.
    fd > 2 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

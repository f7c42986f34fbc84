//! sbx's own error: what step failed, which call, on what, and why.
//!
//! Every failure of sbx itself exits 125 (sbx(1), EXIT STATUS); 126 and 127 are
//! reserved for "cannot execute" and "not found", decided in `exec`.

use std::fmt;

/// Exit status for sbx's own failures.
pub const EXIT_SETUP: i32 = 125;
/// `--timeout` ran out and the sandbox was killed (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;
/// The command exists but cannot be executed.
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The launch step or option, e.g. `--ro-bind /a:/b` or `pivot_root`.
    pub step: String,
    /// What went wrong, including the syscall and its arguments when there is one.
    pub detail: String,
    pub code: i32,
    /// What a caller may branch on (the text is for people).
    pub kind: Kind,
}

/// The errors a caller handles differently from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Other,
    /// A running sandbox already has the name asked for (`--name`).
    NameTaken,
}

impl Error {
    pub fn new(step: impl Into<String>, detail: impl Into<String>) -> Self {
        Error {
            step: step.into(),
            detail: detail.into(),
            code: EXIT_SETUP,
            kind: Kind::Other,
        }
    }

    pub fn of_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// A failed syscall: `call` names it with its arguments, `errno` is the result.
    pub fn sys(step: impl Into<String>, call: impl fmt::Display, errno: i32) -> Self {
        Error::new(step, format!("{call}: {}", strerror(errno)))
    }

    /// Prefix the step with the context it happened in (e.g. the mount op).
    pub fn within(mut self, context: impl fmt::Display) -> Self {
        self.step = format!("{context}: {}", self.step);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Steps and details quote paths, names and command lines: escaped, so nothing
        // a sandbox or a file chose reaches the terminal as a control sequence.
        write!(
            f,
            "{}: {}",
            crate::text::escape(&self.step),
            crate::text::escape(&self.detail)
        )
    }
}

impl std::error::Error for Error {}

pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // "No such file or directory (os error 2)" -> keep the text, add the symbolic name.
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    match errno_name(errno) {
        Some(name) => format!("{text} ({name})"),
        None => text,
    }
}

fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ELOOP => "ELOOP",
        libc::ENOSYS => "ENOSYS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ENOEXEC => "ENOEXEC",
        libc::E2BIG => "E2BIG",
        libc::ETXTBSY => "ETXTBSY",
        libc::ESRCH => "ESRCH",
        _ => return None,
    })
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

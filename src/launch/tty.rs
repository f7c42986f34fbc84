//! The caller's terminal, as it was before the sandbox: restored when the sandbox
//! ends, so a command that left it raw, without echo, or non-blocking does not leave
//! the user's shell unusable. The command shares the terminal's open file
//! description with sbx's own stdio: file status flags (`O_NONBLOCK`, which makes the
//! shell's next read fail with EAGAIN and bash exit) and termios (`stty -echo raw`)
//! persist after it exits, and so does output suspended with tcflow(TCOOFF). The
//! changes that cannot be undone from here (line discipline, exclusive mode, console
//! redirection, hang-up) are refused by seccomp instead (`seccomp::TERMINAL_IOCTLS`).
//! Not restored: the window size (the user may have resized the terminal meanwhile,
//! and the emulator sets it again on the next resize), and modes a command sets by
//! writing escape sequences to the terminal (character set, mouse reporting): those
//! would need sbx to sit between the command and the terminal, as a pty proxy.

use std::os::fd::AsRawFd;

use crate::sys;

/// Descriptors 0–2 as they were: file status flags, and termios where a terminal;
/// and the controlling terminal's termios, through a descriptor of our own (a
/// command whose stdio is redirected can still open /dev/tty).
pub struct Saved {
    fds: Vec<(i32, i32, Option<libc::termios>)>,
    /// Held open until the restore, so its number stays ours.
    _ctty: Option<std::os::fd::OwnedFd>,
}

pub fn save() -> Saved {
    let ctty = sys::open(
        c"/dev/tty",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
    )
    .ok();
    let fds = (0..3).chain(ctty.as_ref().map(|f| f.as_raw_fd()));
    let v = fds
        .filter_map(|fd| Some((fd, sys::fcntl_getfl(fd)?, sys::tcgetattr(fd))))
        .collect();
    Saved {
        fds: v,
        _ctty: ctty,
    }
}

fn same(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

impl Saved {
    /// Put back what changed. termios only while sbx is in the terminal's foreground
    /// process group: in the background the shell owns the terminal's mode (and the
    /// write would stop sbx with SIGTTOU).
    pub fn restore(&self) {
        for (fd, flags, term) in &self.fds {
            if sys::fcntl_getfl(*fd) != Some(*flags) {
                sys::fcntl_setfl(*fd, *flags);
            }
            let Some(saved) = term else { continue };
            if !sys::in_foreground(*fd) {
                continue;
            }
            if sys::tcgetattr(*fd).is_some_and(|now| !same(&now, saved)) {
                sys::tcsetattr(*fd, saved);
            }
            // Output suspended with tcflow(TCOOFF) (or ^S) stays suspended for the
            // shell after the sandbox: resumed. A no-op when it is not suspended.
            sys::tcflow_on(*fd);
        }
    }
}

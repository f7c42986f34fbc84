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

/// Descriptors 0–2 as they were: file status flags, and termios where a terminal;
/// and the controlling terminal's termios, through a descriptor of our own (a
/// command whose stdio is redirected can still open /dev/tty).
pub struct Saved {
    fds: Vec<(i32, i32, Option<libc::termios>)>,
    /// Held open until the restore, so its number stays ours.
    _ctty: Option<std::os::fd::OwnedFd>,
}

pub fn save() -> Saved {
    let mut v = Vec::new();
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let ctty = unsafe {
        libc::open(
            c"/dev/tty".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    // SAFETY: a fresh descriptor, owned here from now on.
    let ctty = (ctty >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(ctty) });
    let fds = (0..3).chain(
        ctty.as_ref()
            .map(|f: &std::os::fd::OwnedFd| std::os::fd::AsRawFd::as_raw_fd(f)),
    );
    for fd in fds {
        // SAFETY: F_GETFL only queries.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            continue;
        }
        // SAFETY: termios is plain data, filled by the kernel on success.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer.
        let term = (unsafe { libc::tcgetattr(fd, &mut t) } == 0).then_some(t);
        v.push((fd, flags, term));
    }
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
            // SAFETY: F_GETFL/F_SETFL on our own descriptor.
            unsafe {
                if libc::fcntl(*fd, libc::F_GETFL) != *flags {
                    libc::fcntl(*fd, libc::F_SETFL, *flags);
                }
            }
            let Some(saved) = term else { continue };
            // SAFETY: trivial queries on our own descriptor.
            let foreground = unsafe { libc::tcgetpgrp(*fd) == libc::getpgrp() };
            if !foreground {
                continue;
            }
            // SAFETY: termios is plain data, filled by the kernel on success.
            let mut now: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointers.
            unsafe {
                if libc::tcgetattr(*fd, &mut now) == 0 && !same(&now, saved) {
                    libc::tcsetattr(*fd, libc::TCSANOW, saved);
                }
                // Output suspended with tcflow(TCOOFF) (or ^S) stays suspended for the
                // shell after the sandbox: resumed. A no-op when it is not suspended.
                libc::tcflow(*fd, libc::TCOON);
            }
        }
    }
}

//! The one thin syscall layer. Every wrapper returns a [`SysError`] that names the
//! call and its arguments, so the launcher can say which step failed on what.

use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    pub call: String,
    pub errno: i32,
}

impl SysError {
    /// Attach the launch step this call was part of.
    pub fn at(self, step: impl Into<String>) -> Error {
        Error::sys(step, self.call, self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, crate::error::strerror(self.errno))
    }
}

pub type SysResult<T> = Result<T, SysError>;

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check<F: FnOnce() -> String>(ret: libc::c_long, call: F) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(SysError {
            call: call(),
            errno: errno(),
        })
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// A path or name as a C string; paths with NUL bytes are rejected when the plan is built.
pub fn cstr(s: &OsStr) -> CString {
    CString::new(s.as_bytes()).unwrap_or_else(|_| CString::new("<path with NUL>").unwrap())
}

fn show(p: &CStr) -> String {
    format!("{:?}", p.to_string_lossy())
}

// ---- processes -------------------------------------------------------------

/// fork(2) by raw clone(2) with `extra` flags (e.g. `CLONE_NEWUSER | CLONE_NEWPID`): fork semantics,
/// no new stack. The caller is single-threaded (sbx never starts a thread).
pub fn clone_fork(extra: libc::c_int) -> SysResult<libc::pid_t> {
    let flags = (extra | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: raw clone without CLONE_VM/new stack behaves as fork(); the process is
    // single-threaded, so no lock can be held by another thread at this point.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    check(ret, || format!("clone(flags={flags:#x})")).map(|p| p as libc::pid_t)
}

/// clone(2)'s `struct clone_args` (linux/sched.h), up to `cgroup` (Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// linux/sched.h: the child starts in the cgroup `clone_args.cgroup` refers to.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// As `clone_fork`, with the child born in the cgroup directory `cgroup` (clone3's
/// CLONE_INTO_CGROUP, Linux 5.7): it never runs anywhere else, and neither can
/// anything it forks.
pub fn clone_fork_into(extra: libc::c_int, cgroup: Option<BorrowedFd>) -> SysResult<libc::pid_t> {
    let Some(cg) = cgroup else {
        return clone_fork(extra);
    };
    let args = CloneArgs {
        flags: extra as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cg.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves as fork(); the
    // process is single-threaded (see clone_fork); `args` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check(ret, || {
        format!(
            "clone3(flags={}|CLONE_INTO_CGROUP)",
            crate::namespace::flag_names(extra)
        )
    })
    .map(|p| p as libc::pid_t)
}

pub fn unshare(flags: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    let ret = unsafe { libc::unshare(flags) } as libc::c_long;
    check(ret, || {
        format!("unshare({})", crate::namespace::flag_names(flags))
    })
    .map(drop)
}

pub fn setns(fd: BorrowedFd, nstype: libc::c_int) -> SysResult<()> {
    // SAFETY: valid fd.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), nstype) } as libc::c_long;
    check(ret, || {
        format!("setns({})", crate::namespace::flag_names(nstype))
    })
    .map(drop)
}

pub fn prctl(op: libc::c_int, arg: libc::c_ulong, name: &str) -> SysResult<libc::c_int> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            op,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long, || format!("prctl({name}, {arg})")).map(|r| r as libc::c_int)
}

/// SIGKILL when the parent dies (the caller re-checks a parent that may already have).
pub fn die_with_parent() -> SysResult<()> {
    prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        "PR_SET_PDEATHSIG",
    )
    .map(drop)
}

pub fn pidfd_open(pid: libc::pid_t) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check(ret, || format!("pidfd_open({pid})")).map(fd_from)
}

/// Signal the process behind a pidfd (0: only check it is alive).
pub fn pidfd_send_signal(fd: BorrowedFd, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: plain syscall; no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(ret, || format!("pidfd_send_signal({sig})")).map(drop)
}

/// True if `fd` (a pidfd) is readable now, i.e. that process has exited. A signal
/// interrupting the poll is not an answer: polled again. Any other failure (the
/// descriptor is not a pidfd) answers true: every caller then takes the safe path
/// (PID 1 stops rather than outlive a launcher it cannot watch).
pub fn pidfd_exited(fd: BorrowedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        match n {
            0 => return false,
            n if n < 0 && errno() == libc::EINTR => continue,
            _ => return true,
        }
    }
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain syscall; ESRCH (already gone) is fine for every caller.
    unsafe { libc::kill(pid, sig) };
}

pub fn waitpid(
    pid: libc::pid_t,
    flags: libc::c_int,
) -> SysResult<Option<(libc::pid_t, libc::c_int)>> {
    let mut status = 0;
    loop {
        // SAFETY: valid out pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 && errno() == libc::EINTR {
            continue;
        }
        let ret = check(ret as libc::c_long, || format!("waitpid({pid})"))?;
        return Ok(if ret == 0 {
            None
        } else {
            Some((ret as libc::pid_t, status))
        });
    }
}

/// Turn a wait status into the shell's convention: the exit code, or 128+N for signal N.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        crate::error::EXIT_SETUP
    }
}

pub fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

pub fn sigmask(how: libc::c_int, set: &libc::sigset_t) {
    // SAFETY: valid set pointer; the old mask is not needed.
    unsafe { libc::sigprocmask(how, set, std::ptr::null_mut()) };
}

/// Wait for one of the (blocked) signals in `set`; returns (signo, si_code). EINTR
/// is waited through; any other error (EINVAL: an invalid set, which would fail
/// forever) is returned instead of spinning.
pub fn sigwait(set: &libc::sigset_t) -> SysResult<(libc::c_int, libc::c_int)> {
    loop {
        // SAFETY: siginfo_t is plain data filled by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig > 0 {
            return Ok((sig, info.si_code));
        }
        if errno() != libc::EINTR {
            return check(-1, || "sigwaitinfo".into()).map(|_| (0, 0));
        }
    }
}

/// Take every pending signal of `set` (blocked) without waiting: their moment has
/// passed.
pub fn discard_pending(set: &libc::sigset_t) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointers; a null siginfo is allowed.
    while unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &zero) } > 0 {}
}

/// The (blocked) signals in `set` as a descriptor, to wait for them beside others.
pub fn signalfd(set: &libc::sigset_t) -> SysResult<OwnedFd> {
    // SAFETY: valid set pointer; -1 asks for a new descriptor.
    let ret = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    check(ret as libc::c_long, || "signalfd".into()).map(fd_from)
}

/// One pending signal from a [`signalfd`]: (signo, si_code), or None if none is pending.
pub fn read_signal(fd: BorrowedFd) -> Option<(libc::c_int, libc::c_int)> {
    // SAFETY: signalfd_siginfo is plain data filled by the kernel.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is one signalfd_siginfo.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    (n as usize == size).then_some((info.ssi_signo as libc::c_int, info.ssi_code))
}

/// Wait until one of `fds` is readable or `deadline` passes; returns which are
/// readable (all false at the deadline); Err: poll failed (not a timeout).
pub fn poll_readable(
    fds: &[BorrowedFd],
    deadline: Option<std::time::Instant>,
) -> SysResult<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => poll_ms(d.saturating_duration_since(std::time::Instant::now())),
        };
        // SAFETY: a valid array of pollfds.
        let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        check(n as libc::c_long, || "poll".into())?;
        return Ok(p.iter().map(|x| x.revents != 0).collect());
    }
}

/// A poll(2) timeout for `left`: milliseconds rounded up (a remaining 0.4 ms is 1,
/// not 0, which would return at once and spin), capped at i32::MAX.
pub fn poll_ms(left: std::time::Duration) -> libc::c_int {
    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
}

/// The pid (in our pid namespace) of the process behind a pidfd, from its fdinfo
/// (proc(5)); None once that process has exited.
pub fn pidfd_pid(fd: BorrowedFd) -> Option<libc::pid_t> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let pid: libc::pid_t = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid > 0).then_some(pid)
}

pub fn reset_signal(sig: libc::c_int) {
    // SAFETY: restoring the default disposition.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Close every descriptor but 0, 1, 2 and `keep`, which becomes 3 (close-on-exec).
/// Whatever owned the others must not run again in this process.
pub fn keep_only_fds(keep: Option<OwnedFd>) -> SysResult<Option<OwnedFd>> {
    let Some(fd) = keep.map(IntoRawFd::into_raw_fd) else {
        return close_fds_from(3).map(|()| None);
    };
    if fd != 3 {
        // SAFETY: dup3 only affects descriptor numbers of this process.
        let ret = unsafe { libc::dup3(fd, 3, libc::O_CLOEXEC) };
        check(ret as libc::c_long, || format!("dup3({fd}, 3, O_CLOEXEC)"))?;
    }
    // --status-fd's failure pipe stays (close-on-exec: the command never has it).
    match crate::status::report_fd() {
        r if r > 4 => {
            close_fds_between(4, r as u32 - 1)?;
            close_fds_from(r as u32 + 1)?;
        }
        _ => close_fds_from(4)?,
    }
    // SAFETY: 3 is the kept descriptor and nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(3) }))
}

/// Close every descriptor from `first` on. close_range(2); where an outer seccomp
/// policy refuses it, each descriptor listed in /proc/self/fd; if neither works, the
/// error (never a silent leak).
pub fn close_fds_from(first: u32) -> SysResult<()> {
    close_fds_between(first, u32::MAX)
}

/// Close descriptors `first` to `last`, as [`close_fds_from`].
pub fn close_fds_between(first: u32, last: u32) -> SysResult<()> {
    // SAFETY: closes descriptors this process owns; nothing refers to them afterwards.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0 {
        return Ok(());
    }
    let errno = errno();
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| SysError {
            call: "close_range(3, ~0) and reading /proc/self/fd".into(),
            errno,
        })?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32 && *fd as u32 <= last)
        .collect();
    for fd in fds {
        // SAFETY: as above (the read_dir descriptor is closed already: EBADF is fine).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        let n = check(n as libc::c_long, || format!("write(fd {fd})"))?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

// ---- files and paths ---------------------------------------------------------

pub fn open(path: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    check(ret as libc::c_long, || format!("open({})", show(path))).map(fd_from)
}

pub fn openat(dirfd: BorrowedFd, path: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: valid fd and C string.
    let ret = unsafe { libc::openat(dirfd.as_raw_fd(), path.as_ptr(), flags | libc::O_CLOEXEC) };
    check(ret as libc::c_long, || format!("openat({})", show(path))).map(fd_from)
}

/// Leave the process at once, without running destructors or atexit handlers (a
/// forked child must not flush or free what its parent owns).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

pub fn getuid() -> libc::uid_t {
    // SAFETY: a getter that cannot fail.
    unsafe { libc::getuid() }
}

pub fn getgid() -> libc::gid_t {
    // SAFETY: a getter that cannot fail.
    unsafe { libc::getgid() }
}

pub fn geteuid() -> libc::uid_t {
    // SAFETY: a getter that cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: a getter that cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> libc::pid_t {
    // SAFETY: a getter that cannot fail.
    unsafe { libc::getppid() }
}

/// Set the umask; returns the previous one.
pub fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}

pub fn sched_yield() {
    // SAFETY: plain syscall.
    unsafe { libc::sched_yield() };
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new anonymous session keyring.
pub fn join_new_session_keyring() -> Result<(), i32> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) with a NULL name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, 1, 0usize) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Set both limits of `res` to `v`.
pub fn setrlimit(res: libc::__rlimit_resource_t, v: u64) -> Result<(), i32> {
    let lim = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    // SAFETY: valid rlimit struct.
    if unsafe { libc::setrlimit(res, &lim) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// The hard limit of `res`, if it can be read.
pub fn hard_rlimit(res: libc::__rlimit_resource_t) -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer.
    (unsafe { libc::getrlimit(res, &mut r) } == 0).then_some(r.rlim_max)
}

/// execve(2); returns only on failure, with the errno.
pub fn execve(path: &CStr, argv: &[CString], env: &[CString]) -> i32 {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: NUL-terminated argv/envp arrays of valid C strings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    errno()
}

/// renameat(2) within `dir`.
pub fn renameat(dir: BorrowedFd, from: &CStr, to: &CStr) -> SysResult<()> {
    // SAFETY: valid fd and C strings.
    let ret =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    check(ret as libc::c_long, || {
        format!("renameat({}, {})", show(from), show(to))
    })
    .map(drop)
}

/// unlinkat(2) of a file in `dir`.
pub fn unlinkat(dir: BorrowedFd, name: &CStr) -> SysResult<()> {
    // SAFETY: valid fd and C string.
    let ret = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    check(ret as libc::c_long, || format!("unlinkat({})", show(name))).map(drop)
}

/// Run `f` on a one-byte message with room for one descriptor in its control data.
fn with_fd_msg<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data; the buffers it points to outlive `f`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    f(&mut msg)
}

/// Pass `fd` over the unix socket `sock` (SCM_RIGHTS), with one byte of data.
pub fn send_fd(sock: BorrowedFd, fd: BorrowedFd) -> SysResult<()> {
    let r = with_fd_msg(|msg| {
        // SAFETY: the control buffer has room for one header and one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd.as_raw_fd());
            libc::sendmsg(sock.as_raw_fd(), msg, 0)
        }
    });
    check(r as libc::c_long, || "sendmsg(SCM_RIGHTS)".to_string()).map(drop)
}

/// Receive a descriptor sent with [`send_fd`]; `None` if the peer is gone.
pub fn recv_fd(sock: BorrowedFd) -> Option<OwnedFd> {
    with_fd_msg(|msg| {
        loop {
            // SAFETY: valid socket and message buffers.
            let r = unsafe { libc::recvmsg(sock.as_raw_fd(), msg, libc::MSG_CMSG_CLOEXEC) };
            if r < 0 && errno() == libc::EINTR {
                continue;
            }
            if r <= 0 {
                return None;
            }
            break;
        }
        // SAFETY: the kernel filled the control buffer; the header is checked first.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(msg);
            if c.is_null()
                || (*c).cmsg_level != libc::SOL_SOCKET
                || (*c).cmsg_type != libc::SCM_RIGHTS
            {
                return None;
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
            Some(OwnedFd::from_raw_fd(fd))
        }
    })
}

/// A connected pair of SOCK_SEQPACKET unix sockets, close-on-exec.
pub fn seqpacket_pair() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid out array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(r as libc::c_long, || {
        "socketpair(AF_UNIX, SOCK_SEQPACKET)".to_string()
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One read(2) into `buf`, again on EINTR; the byte count (0: EOF).
pub fn read_once(fd: BorrowedFd, buf: &mut [u8]) -> Result<usize, i32> {
    loop {
        // SAFETY: valid buffer of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return if n < 0 { Err(errno()) } else { Ok(n as usize) };
    }
}

/// The file status flags of `fd` (F_GETFL), if it is open.
pub fn fcntl_getfl(fd: RawFd) -> Option<libc::c_int> {
    // SAFETY: F_GETFL only queries.
    let f = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (f >= 0).then_some(f)
}

pub fn fcntl_setfl(fd: RawFd, flags: libc::c_int) {
    // SAFETY: F_SETFL on a descriptor number; a closed one fails harmlessly.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
}

/// The terminal attributes of `fd`, if it is a terminal.
pub fn tcgetattr(fd: RawFd) -> Option<libc::termios> {
    // SAFETY: termios is plain data, filled by the kernel on success.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    (unsafe { libc::tcgetattr(fd, &mut t) } == 0).then_some(t)
}

pub fn tcsetattr(fd: RawFd, t: &libc::termios) {
    // SAFETY: valid pointer to attributes read from the same kind of descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) };
}

/// Whether this process is in the foreground process group of terminal `fd`.
pub fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: plain queries.
    unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() }
}

/// Resume output suspended on terminal `fd` (tcflow TCOON).
pub fn tcflow_on(fd: RawFd) {
    // SAFETY: plain ioctl on a descriptor number.
    unsafe { libc::tcflow(fd, libc::TCOON) };
}

/// A close-on-exec copy of `fd` numbered `min` or above (F_DUPFD_CLOEXEC).
pub fn dup_above(fd: BorrowedFd, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only makes a new descriptor.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    check(ret as libc::c_long, || "fcntl(F_DUPFD_CLOEXEC)".to_string()).map(fd_from)
}

/// Close a descriptor known only by number (one handed to sbx, or kept in a
/// static); errors are of no use here.
pub fn close_raw(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it again.
    unsafe { libc::close(fd) };
}

/// Bring network interface `name` up (SIOCSIFFLAGS with IFF_UP|IFF_RUNNING, through
/// a datagram socket: netdevice(7)).
pub fn interface_up(name: &CStr) -> SysResult<()> {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let s = check(s as libc::c_long, || {
        "socket(AF_INET, SOCK_DGRAM)".to_string()
    })
    .map(|_| {
        // SAFETY: a fresh descriptor, owned from here.
        unsafe { OwnedFd::from_raw_fd(s) }
    })?;
    // SAFETY: ifreq is plain data.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in ifr.ifr_name.iter_mut().zip(name.to_bytes()) {
        *d = *c as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: valid fd and ifreq.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) };
    check(r as libc::c_long, || {
        format!("ioctl({}, SIOCSIFFLAGS, IFF_UP)", show(name))
    })
    .map(drop)
}

/// An anonymous memory file (memfd_create, close-on-exec).
pub fn memfd(name: &CStr) -> SysResult<OwnedFd> {
    // SAFETY: a name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    check(fd as libc::c_long, || {
        format!("memfd_create({})", show(name))
    })
    .map(fd_from)
}

/// pread(2) of up to `buf.len()` bytes at `at`; 0 at the end or on an error.
pub fn pread_some(fd: BorrowedFd, buf: &mut [u8], at: u64) -> usize {
    // SAFETY: valid fd and buffer of its length.
    let n = unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            at as libc::off_t,
        )
    };
    n.max(0) as usize
}

/// A prctl(2) query (`PR_GET_*`) without arguments: its value.
pub fn prctl_get(option: libc::c_int) -> Result<libc::c_int, i32> {
    // SAFETY: a query without side effects.
    let r = unsafe { libc::prctl(option, 0, 0, 0, 0) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data filled by the kernel.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// prctl(2) with two integer arguments.
pub fn prctl2(
    op: libc::c_int,
    a: libc::c_ulong,
    b: libc::c_ulong,
    name: &str,
) -> SysResult<libc::c_int> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    check(ret as libc::c_long, || format!("prctl({name})")).map(|r| r as libc::c_int)
}

/// Install a seccomp filter program of `len` instructions (PR_SET_SECCOMP).
pub fn seccomp_filter(prog: &[libc::sock_filter], len: u16) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a valid program of `len` instructions that outlives
    // the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// The kernel's Landlock ABI version (landlock_create_ruleset with the version
/// flag), or None without Landlock.
pub fn landlock_abi(nr: libc::c_long, version_flag: u32) -> Option<i64> {
    // SAFETY: the version query takes no attribute.
    let v = unsafe { libc::syscall(nr, std::ptr::null::<u8>(), 0usize, version_flag) };
    (v > 0).then_some(v)
}

/// Wait until `fd` signals a priority event (POLLPRI: cgroup.events changed) or
/// `limit` passes.
pub fn poll_priority(fd: BorrowedFd, limit: std::time::Duration) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, poll_ms(limit).max(1)) };
}

/// open(2) without close-on-exec (for fds 0-2).
pub fn open_inheritable(path: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::open(path.as_ptr(), flags) };
    check(ret as libc::c_long, || format!("open({})", show(path))).map(fd_from)
}

/// Whether `path` carries extended attribute `name` (a size query).
pub fn has_xattr(path: &CStr, name: &CStr) -> bool {
    // SAFETY: a size query (null buffer) of NUL-terminated strings.
    unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

/// Extended attribute `name` of `path` itself (not followed), up to 256 bytes.
pub fn lgetxattr(path: &CStr, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// access(2) with the real ids.
pub fn access(path: &CStr, mode: libc::c_int) -> bool {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), mode) == 0 }
}

/// fstat(2) of a descriptor known by number (0-2).
pub fn fstat_number(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: stat is plain data, filled by the kernel on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer; a closed descriptor fails with EBADF.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// A pipe (read end, write end), both close-on-exec.
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    pipe_with(0)
}

/// A pipe with `flags` (O_NONBLOCK) besides close-on-exec.
pub fn pipe_with(flags: libc::c_int) -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a two-element array for pipe2.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) } as libc::c_long;
    check(ret, || "pipe2".to_string())?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Open `path` in `dirfd` for appending, made with `mode` where missing, following
/// no symlink at its end and not blocking on a FIFO.
pub fn open_append(dirfd: BorrowedFd, path: &CStr, mode: libc::mode_t) -> SysResult<OwnedFd> {
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_CLOEXEC;
    // SAFETY: valid fd and C string; O_CREAT takes the mode.
    let ret = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            mode as libc::c_uint,
        )
    };
    check(ret as libc::c_long, || {
        format!("openat({}, O_APPEND|O_CREAT)", show(path))
    })
    .map(fd_from)
}

/// Open a canonical path (no symlink in it by construction) as O_PATH, refusing to
/// follow any symlink: a component swapped for a symlink since the plan resolved the
/// path makes this fail (ELOOP) instead of reaching elsewhere.
pub fn open_no_symlinks(path: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers; size matches the struct.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    check(ret, || {
        format!("openat2({}, RESOLVE_NO_SYMLINKS)", show(path))
    })
    .map(fd_from)
}

/// openat2(2) below `dirfd` with `RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS`: the path is
/// resolved as if `dirfd` were `/`, so neither `..` nor an absolute symlink can leave it
/// (the CVE-2026-87766 class: setup following a symlink out of the new root).
pub fn open_in_root(dirfd: BorrowedFd, rel: &CStr, flags: libc::c_int) -> SysResult<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers; size matches the struct.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    check(ret, || {
        format!("openat2(root, {}, RESOLVE_IN_ROOT)", show(rel))
    })
    .map(fd_from)
}

/// Make directory `path` and any missing parents (mode `mode`), following no
/// symlink anywhere: each component is opened with O_NOFOLLOW from the one before,
/// so a link planted on the way fails the call instead of leading elsewhere.
pub fn mkdir_p_nofollow(path: &std::path::Path, mode: u32) -> SysResult<()> {
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;
    let mut dir = open(c"/", libc::O_PATH | libc::O_DIRECTORY)?;
    for c in path.components() {
        let std::path::Component::Normal(name) = c else {
            continue;
        };
        let name = CString::new(name.as_bytes()).map_err(|_| SysError {
            call: format!("mkdir {}", path.display()),
            errno: libc::EINVAL,
        })?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        dir = match openat(dir.as_fd(), &name, flags) {
            Err(e) if e.errno == libc::ENOENT => {
                match mkdirat(dir.as_fd(), &name, mode) {
                    Err(e) if e.errno != libc::EEXIST => return Err(e),
                    _ => {}
                }
                openat(dir.as_fd(), &name, flags)?
            }
            other => other?,
        };
    }
    Ok(())
}

pub fn mkdirat(dirfd: BorrowedFd, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: valid fd and C string.
    let ret = unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), mode) };
    check(ret as libc::c_long, || {
        format!("mkdirat({}, {mode:o})", show(name))
    })
    .map(drop)
}

/// Create an empty regular file `name` in `dirfd` by mknodat(2) (one call, no
/// descriptor; a regular file needs no CAP_MKNOD); fails on any existing entry.
pub fn mknod_file_at(dirfd: BorrowedFd, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: valid fd and C string.
    let ret = unsafe { libc::mknodat(dirfd.as_raw_fd(), name.as_ptr(), libc::S_IFREG | mode, 0) };
    check(ret as libc::c_long, || {
        format!("mknodat({}, S_IFREG|{mode:o})", show(name))
    })
    .map(drop)
}

/// Create regular file `name` in `dirfd` and return it open for writing.
pub fn create_file_with(dirfd: BorrowedFd, name: &CStr, mode: u32) -> SysResult<OwnedFd> {
    // SAFETY: valid fd and C string.
    let ret = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    check(ret as libc::c_long, || {
        format!("openat({}, O_CREAT|O_EXCL)", show(name))
    })
    .map(fd_from)
}

pub fn symlinkat(target: &CStr, dirfd: BorrowedFd, name: &CStr) -> SysResult<()> {
    // SAFETY: valid fd and C strings.
    let ret = unsafe { libc::symlinkat(target.as_ptr(), dirfd.as_raw_fd(), name.as_ptr()) };
    check(ret as libc::c_long, || {
        format!("symlinkat({}, {})", show(target), show(name))
    })
    .map(drop)
}

pub fn readlinkat(dirfd: BorrowedFd, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid buffer of the given size.
    let n = unsafe {
        libc::readlinkat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

pub fn fstat(fd: BorrowedFd) -> SysResult<libc::stat> {
    // SAFETY: stat is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out pointer.
    let ret = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    check(ret as libc::c_long, || "fstat".to_string()).map(|_| st)
}

pub fn fchdir(fd: BorrowedFd) -> SysResult<()> {
    // SAFETY: valid fd.
    let ret = unsafe { libc::fchdir(fd.as_raw_fd()) };
    check(ret as libc::c_long, || "fchdir(new root)".to_string()).map(drop)
}

pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::chdir(path.as_ptr()) };
    check(ret as libc::c_long, || format!("chdir({})", show(path))).map(drop)
}

// ---- mounts --------------------------------------------------------------------

/// open_tree(2) with `OPEN_TREE_CLONE|AT_RECURSIVE` on an fd: a detached, recursive
/// copy of the mount tree at `fd`. Recursive because a non-recursive bind could reveal
/// what the host mounted over (and the kernel refuses it for locked mounts).
pub fn clone_tree(fd: BorrowedFd, what: &str) -> SysResult<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | libc::AT_EMPTY_PATH as u32
        | libc::AT_RECURSIVE as u32;
    // SAFETY: valid fd and empty C string.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    check(ret, || {
        format!("open_tree({what:?}, OPEN_TREE_CLONE|AT_RECURSIVE)")
    })
    .map(fd_from)
}

/// Attach the detached mount `from` onto the inode `to` (both fds).
pub fn move_mount_fd(from: BorrowedFd, to: BorrowedFd, what: &str) -> SysResult<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: valid fds and empty C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    check(ret, || format!("move_mount(-> {what:?})")).map(drop)
}

/// Attach the detached mount `from` onto entry `name` of directory `dir`: one path
/// component, and move_mount(2) follows no symlink on its target without
/// MOVE_MOUNT_T_SYMLINKS, so nothing outside `dir` can be reached.
pub fn move_mount_to(from: BorrowedFd, dir: BorrowedFd, name: &CStr, what: &str) -> SysResult<()> {
    debug_assert!(!name.to_bytes().contains(&b'/'));
    // SAFETY: valid fds and C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(ret, || format!("move_mount(-> {what:?})")).map(drop)
}

/// Attach the detached mount `from` at an absolute path of the current mount tree.
pub fn move_mount_path(from: BorrowedFd, to: &CStr) -> SysResult<()> {
    // SAFETY: valid fd and C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(ret, || format!("move_mount(-> {})", show(to))).map(drop)
}

/// mount_setattr(2) on the mount at `fd`; `recursive` covers every submount in one call,
/// which is what makes read-only binds read-only all the way down without a mountinfo walk.
pub fn mount_setattr(
    fd: BorrowedFd,
    recursive: bool,
    set: u64,
    propagation: u64,
    what: &str,
) -> SysResult<()> {
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    attr.attr_set = set;
    attr.propagation = propagation;
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: valid fd, empty path, struct of the advertised size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    check(ret, || {
        format!(
            "mount_setattr({what:?}, {}{})",
            attr_names(set),
            if recursive { ", AT_RECURSIVE" } else { "" }
        )
    })
    .map(drop)
}

pub fn attr_names(set: u64) -> String {
    let names = [
        (libc::MOUNT_ATTR_RDONLY, "ro"),
        (libc::MOUNT_ATTR_NOSUID, "nosuid"),
        (libc::MOUNT_ATTR_NODEV, "nodev"),
        (libc::MOUNT_ATTR_NOEXEC, "noexec"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(f, _)| set & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

/// A new filesystem instance (fsopen/fsconfig/fsmount), returned detached.
pub fn new_fs(fstype: &CStr, options: &[(&CStr, Option<&CStr>)], attrs: u64) -> SysResult<OwnedFd> {
    // SAFETY: valid C string.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) };
    let fs = check(fs, || format!("fsopen({})", show(fstype))).map(fd_from)?;
    for (key, value) in options {
        // SAFETY: valid fd and C strings.
        let ret = unsafe {
            match value {
                Some(v) => libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    libc::FSCONFIG_SET_STRING,
                    key.as_ptr(),
                    v.as_ptr(),
                    0,
                ),
                None => libc::syscall(
                    libc::SYS_fsconfig,
                    fs.as_raw_fd(),
                    libc::FSCONFIG_SET_FLAG,
                    key.as_ptr(),
                    std::ptr::null::<libc::c_char>(),
                    0,
                ),
            }
        };
        check(ret, || {
            format!(
                "fsconfig({}, {}={})",
                show(fstype),
                key.to_string_lossy(),
                value
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        })?;
    }
    // SAFETY: valid fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    check(ret, || {
        format!("fsconfig({}, FSCONFIG_CMD_CREATE)", show(fstype))
    })?;
    // SAFETY: valid fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    };
    check(ret, || {
        format!("fsmount({}, {})", show(fstype), attr_names(attrs))
    })
    .map(fd_from)
}

pub fn pivot_root_here() -> SysResult<()> {
    // SAFETY: valid C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
    check(ret, || "pivot_root(\".\", \".\")".to_string()).map(drop)
}

pub fn umount_detach(path: &CStr) -> SysResult<()> {
    // SAFETY: valid C string.
    let ret = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    check(ret as libc::c_long, || {
        format!("umount2({}, MNT_DETACH)", show(path))
    })
    .map(drop)
}

pub fn sethostname(name: &[u8]) -> SysResult<()> {
    // SAFETY: valid buffer and length.
    let ret = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    check(ret as libc::c_long, || {
        format!("sethostname({:?})", String::from_utf8_lossy(name))
    })
    .map(drop)
}

// ---- capabilities -----------------------------------------------------------------

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) for this thread: (effective, permitted, inheritable) as 64-bit masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as capset(2) v3 requires.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    check(ret, || {
        format!("capset(eff={effective:#x}, prm={permitted:#x}, inh={inheritable:#x})")
    })
    .map(drop)
}

/// The permitted set of this thread; Err: capget failed (a wrong answer would have
/// the caller restore or drop the wrong set).
pub fn cap_permitted() -> SysResult<u64> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data structs as capget(2) v3 requires.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    check(ret, || "capget".into())?;
    Ok((data[0].permitted as u64) | ((data[1].permitted as u64) << 32))
}

/// Borrow a raw fd that the caller knows is open for the duration of the borrow.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// Start `cmd` as a helper the launcher supervises (pasta, xdg-dbus-proxy): signals
/// unblocked (the launcher blocks those it forwards), a process group of its own (a
/// signal to sbx's group, from ^C or timeout(1), must not take it down before the
/// sandbox ends), killed if sbx dies, and the `keep` descriptors inherited. Returns
/// its pid; the caller reaps it with waitpid.
pub fn spawn_helper(
    cmd: &mut std::process::Command,
    keep: Vec<RawFd>,
) -> std::io::Result<libc::pid_t> {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (sigprocmask, setpgid, prctl, fcntl)
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::setpgid(0, 0);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    // The Child handle would not reap on drop; the caller waits with waitpid.
    std::mem::forget(child);
    Ok(pid)
}

/// Wait up to `limit` for a helper's first byte on its readiness pipe (pasta's pid,
/// xdg-dbus-proxy's `x`: each is written only once the helper is ready). EOF means it
/// exited first.
pub fn await_ready(fd: BorrowedFd, limit: std::time::Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("not ready after {} s", limit.as_secs()));
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; rounded up, so a wait under a millisecond
        // sleeps instead of spinning at timeout 0.
        let n = unsafe { libc::poll(&mut pfd, 1, poll_ms(left)) };
        if n < 0 && errno() != libc::EINTR {
            return Err(format!("poll: errno {}", errno()));
        }
        if n <= 0 {
            continue;
        }
        let mut b = [0u8; 64];
        // SAFETY: reading into a local buffer.
        match unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) } {
            k if k > 0 => return Ok(()),
            0 => return Err("it exited before it was ready".into()),
            _ if errno() == libc::EINTR => {}
            _ => return Err(format!("read: errno {}", errno())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn poll_timeouts_round_up_so_short_waits_sleep() {
        use std::time::Duration;
        assert_eq!(poll_ms(Duration::ZERO), 0);
        assert_eq!(poll_ms(Duration::from_micros(1)), 1);
        assert_eq!(poll_ms(Duration::from_micros(400)), 1);
        assert_eq!(poll_ms(Duration::from_micros(1_001)), 2);
        assert_eq!(poll_ms(Duration::from_secs(1 << 40)), i32::MAX);
        // A 0.3 ms deadline: one poll that sleeps, not a spin of zero timeouts.
        let (r, _w) = {
            let mut fds = [0; 2];
            // SAFETY: a two-element array for pipe2.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: pipe2 just returned these.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let start = std::time::Instant::now();
        let deadline = start + Duration::from_micros(300);
        assert_eq!(
            poll_readable(&[r.as_fd()], Some(deadline)).unwrap(),
            [false]
        );
        assert!(std::time::Instant::now() >= deadline);
    }

    #[test]
    fn a_pidfd_is_exited_only_once_its_process_is() {
        let me = pidfd_open(std::process::id() as libc::pid_t).unwrap();
        assert!(!pidfd_exited(me.as_fd()));
        // Not a pidfd at all (a closed pipe's read end polls readable, POLLHUP):
        // the safe answer.
        let mut fds = [0; 2];
        // SAFETY: a two-element array for pipe2.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just returned these.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(w);
        assert!(pidfd_exited(r.as_fd()));
    }

    #[test]
    fn capget_reports_the_permitted_set() {
        let permitted = cap_permitted().unwrap();
        // SAFETY: trivial getter.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(permitted, 0);
        } else {
            assert_ne!(permitted & (1 << 21), 0, "CAP_SYS_ADMIN");
        }
    }

    /// The error path (EINVAL, EFAULT) needs a set safe code cannot make; this
    /// pins the ordinary one: a pending blocked signal is returned.
    #[test]
    fn sigwait_returns_a_pending_signal() {
        let set = sigset(&[libc::SIGUSR2]);
        sigmask(libc::SIG_BLOCK, &set);
        // SAFETY: signal to this thread.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2) };
        assert_eq!(sigwait(&set).unwrap().0, libc::SIGUSR2);
        sigmask(libc::SIG_UNBLOCK, &set);
    }
}

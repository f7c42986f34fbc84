//! Test harness: runs the real `sbx` binary as an unprivileged user.
//!
//! As root (CI), every test runs sbx as each of the two users `tests/setup.sh`
//! creates: `sbx-sub` (subordinate ids: the newuidmap path) and `sbx-nosub` (none:
//! the single-id path). As a normal user it runs sbx as that user and says which
//! mapping path that exercises. The binary is copied to a world-readable directory
//! first, because the checkout may sit where the test users cannot enter.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SUB_USER: &str = "sbx-sub";
pub const NOSUB_USER: &str = "sbx-nosub";
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// First subordinate uid/gid range (start, count), if the user has one.
    pub subids: Option<(u32, u32)>,
}

pub fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

fn passwd(pred: impl Fn(&[&str]) -> bool) -> Option<(String, u32, u32, PathBuf)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && pred(f))
        .map(|f| {
            (
                f[0].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                PathBuf::from(f[5]),
            )
        })
}

fn subids(name: &str, uid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/subuid").ok()?;
    let gtext = std::fs::read_to_string("/etc/subgid").ok()?;
    let find = |t: &str| {
        t.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() == 3 && (f[0] == name || f[0] == uid.to_string()) {
                Some((f[1].parse::<u32>().ok()?, f[2].parse::<u32>().ok()?))
            } else {
                None
            }
        })
    };
    let helpers =
        Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/newgidmap").exists();
    match (find(&text), find(&gtext)) {
        (Some(u), Some(_)) if helpers => Some(u),
        _ => None,
    }
}

fn user(name: &str) -> User {
    let (name, uid, gid, home) = passwd(|f| f[0] == name)
        .unwrap_or_else(|| panic!("test user {name} is missing: run `sudo tests/setup.sh` first"));
    let subids = subids(&name, uid);
    User {
        name,
        uid,
        gid,
        home,
        subids,
    }
}

/// The users every test runs sbx as.
pub fn users() -> &'static [User] {
    static USERS: OnceLock<Vec<User>> = OnceLock::new();
    USERS.get_or_init(|| {
        if is_root() {
            let v = vec![user(SUB_USER), user(NOSUB_USER)];
            assert!(
                v[0].subids.is_some(),
                "{SUB_USER} has no subordinate ids: run tests/setup.sh"
            );
            assert!(
                v[1].subids.is_none(),
                "{NOSUB_USER} must have no subordinate ids"
            );
            v
        } else {
            // SAFETY: trivial getter.
            let uid = unsafe { libc::getuid() };
            let (name, uid, gid, home) =
                passwd(|f| f[2] == uid.to_string()).expect("current user in /etc/passwd");
            let u = User {
                subids: subids(&name, uid),
                name,
                uid,
                gid,
                home,
            };
            eprintln!(
                "note: not root, so only {} is tested here (the {} path); run as root to test both",
                u.name,
                if u.subids.is_some() {
                    "newuidmap"
                } else {
                    "single-id"
                }
            );
            vec![u]
        }
    })
}

extern "C" fn remove_bin_dir() {
    if let Some(d) = BIN_DIR.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The sbx binary, copied where any user can execute it.
pub fn sbx_bin() -> PathBuf {
    let dir = BIN_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sbx-test-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dst = dir.join("sbx");
        std::fs::copy(env!("CARGO_BIN_EXE_sbx"), &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(remove_bin_dir) };
        dir
    });
    dir.join("sbx")
}

/// The test suite's probe program (tests/probe/probe.c), built statically once beside
/// the sbx copy so any user can run it inside or outside a sandbox.
pub fn probe_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dst = sbx_bin().with_file_name("probe");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probe/probe.c");
            let o = Command::new("cc")
                .args(["-static", "-O1", "-Wall", "-o"])
                .arg(&dst)
                .arg(src)
                .output()
                .expect("cc (gcc) is needed to build the test probe: tests/setup.sh installs it");
            assert!(
                o.status.success(),
                "building the probe failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
            dst
        })
        .clone()
}

/// A command line for sbx run as `u`, with a clean, predictable environment.
pub fn sbx_cmd<I, S>(u: &User, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(sbx_bin());
    c.args(args)
        .env_clear()
        .env("HOME", &u.home)
        .env("USER", &u.name)
        .env("LOGNAME", &u.name)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir("/")
        .stdin(Stdio::null());
    if is_root() {
        c.uid(u.uid).gid(u.gid);
    }
    c
}

/// `program` run directly as `u` (outside any sandbox), e.g. as sbx's caller.
pub fn as_user(u: &User, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("HOME", &u.home)
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/");
    if is_root() {
        c.uid(u.uid).gid(u.gid);
    }
    c
}

/// `sh -c SCRIPT` run directly as `u` (outside any sandbox), e.g. as sbx's caller.
pub fn user_sh(u: &User, script: &str) -> Command {
    let mut c = as_user(u, "sh");
    c.args(["-c", script]);
    c
}

/// Wait for `child` with a deadline; kills it and panics if it hangs.
pub fn wait_output(child: Child, what: &str) -> Output {
    let pid = child.id() as i32;
    // SAFETY: plain syscall.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(pidfd >= 0, "pidfd_open");
    // SAFETY: fresh descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    if !poll_readable(pidfd.as_raw_fd(), TIMEOUT) {
        // SAFETY: killing our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let out = reader.join().unwrap();
        panic!(
            "{what}: timed out after {TIMEOUT:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    reader.join().unwrap()
}

/// Wait for `child`'s exit with a deadline; kills it and panics if it hangs.
pub fn wait_status(mut child: Child, what: &str) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    // SAFETY: plain syscall.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(pidfd >= 0, "pidfd_open");
    // SAFETY: fresh descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    if !poll_readable(pidfd.as_raw_fd(), TIMEOUT) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}: timed out after {TIMEOUT:?}");
    }
    child.wait().unwrap()
}

pub fn poll_readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) > 0 }
}

/// Run a prepared command line, capturing its output.
pub fn output(mut c: Command) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, &format!("{c:?}"))
}

/// Run sbx as `u` and return its output.
pub fn run<S: AsRef<OsStr>>(u: &User, args: &[S]) -> Output {
    output(sbx_cmd(u, args))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `sh -c SCRIPT` in the default sandbox, assert success, return stdout.
pub fn sh(u: &User, extra: &[&str], script: &str) -> String {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "sh", "-c", script]);
    let o = run(u, &args);
    assert!(
        o.status.success(),
        "as {}: sbx {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        u.name,
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A directory under /tmp owned by `u` (world-readable), removed on drop.
pub struct Fixture {
    pub path: PathBuf,
}

impl Fixture {
    pub fn new(u: &User, tag: &str) -> Fixture {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "sbx-fx-{tag}-{}-{n}-{}",
            std::process::id(),
            u.name
        ));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = Fixture { path };
        f.chown(&f.path, u);
        f
    }

    pub fn chown(&self, p: &Path, u: &User) {
        if is_root() {
            std::os::unix::fs::lchown(p, Some(u.uid), Some(u.gid)).unwrap();
        }
    }

    /// Create a file owned by `u`.
    pub fn file(&self, rel: &str, content: &str, u: &User) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
            self.chown(parent, u);
        }
        std::fs::File::create(&p)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        self.chown(&p, u);
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Host processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if cmd.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                v.push(pid);
            }
        }
    }
    v
}

/// Wait until no host process carries `marker`, up to `limit`; returns what is left.
pub fn wait_gone(marker: &str, limit: Duration) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::yield_now();
    }
}

/// A unique number for markers in command lines.
pub fn unique() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{}{:04}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Spawn `c` with its stdout piped and return once it has printed `needle` (a
/// readiness handshake, never a sleep); panics after `limit`.
pub fn spawn_until(c: &mut Command, needle: &str, limit: Duration) -> Child {
    let child = c.stdout(Stdio::piped()).spawn().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(child.stdout.as_ref().unwrap());
    let got = read_until(fd, needle, limit);
    assert!(got.contains(needle), "never printed {needle:?}: {got:?}");
    child
}

/// Read from `r` until `needle` appears or the deadline passes; returns all read.
pub fn read_until(fd: i32, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    let mut all = Vec::new();
    while !String::from_utf8_lossy(&all).contains(needle) {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() || !poll_readable(fd, left) {
            break;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        all.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// A pseudo-terminal whose slave becomes the controlling terminal of a spawned command.
pub struct Pty {
    pub master: std::fs::File,
    /// Closed once the command holds it, so the master sees EOF when the command ends.
    pub slave: Option<std::fs::File>,
}

impl Pty {
    pub fn new(owner: &User) -> Pty {
        // SAFETY: standard posix_openpt sequence; the returned name is copied at once.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
            let s = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            assert!(s >= 0);
            if is_root() {
                libc::fchown(s, owner.uid, owner.gid);
            }
            Pty {
                master: std::fs::File::from_raw_fd(m),
                slave: Some(std::fs::File::from_raw_fd(s)),
            }
        }
    }

    /// Make `cmd` a session leader with this pty as stdin/stdout/stderr and controlling tty.
    pub fn attach(&self, cmd: &mut Command) {
        let s = || Stdio::from(self.slave.as_ref().unwrap().try_clone().unwrap());
        cmd.stdin(s()).stdout(s()).stderr(s());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Spawn `cmd` on this terminal and close our copy of the slave side.
    pub fn spawn(&mut self, mut cmd: Command) -> Child {
        self.attach(&mut cmd);
        let child = cmd.spawn().unwrap();
        self.slave = None;
        child
    }

    pub fn write(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    pub fn read_until(&mut self, needle: &str, limit: Duration) -> String {
        read_until(self.master.as_raw_fd(), needle, limit)
    }

    /// Read whatever is left until EOF (the slave side closed) or the deadline.
    pub fn drain(&mut self, limit: Duration) -> String {
        let mut all = String::new();
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() || !poll_readable(self.master.as_raw_fd(), left) {
                return all;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }
}

/// /proc/self/status fields of a process inside the sandbox, as "Key: value" lines.
pub fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"))
        .trim()
        .to_string()
}

/// Why a test cannot run here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lacking {
    /// Something `tests/setup.sh` provides (a package, the test users, root): under CI
    /// (`CI` set, as `.ci/run` sets it) that is a failure, never a silent pass.
    Setup,
    /// A kernel feature this machine lacks: the skip is recorded and said.
    Kernel,
}

/// Skip the rest of a test, saying why: on stderr, and in
/// `$CARGO_TARGET_TMPDIR/skips.log`, which `.ci/run` prints after the run (cargo
/// test shows no output of a passing test). Under CI a skip that setup should have
/// prevented fails the test instead.
pub fn skip(lacking: Lacking, reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if lacking == Lacking::Setup && std::env::var_os("CI").is_some() {
        panic!("{test} would be skipped under CI: {reason} (tests/setup.sh should provide it)");
    }
    eprintln!("skipped: {test}: {reason}");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{test}: {reason} ({lacking:?})");
    }
}

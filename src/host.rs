//! Facts about the invoking user and the host that the plan is built from.
//! Gathered once, as the user, before anything is created; the plan itself is a
//! pure function of these facts and the command line (so it is unit-testable).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::userns::{parse_subid, subid_overlaps, SubidRange};

/// What a host path is, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Dir,
    File,
    Symlink(PathBuf),
    Other,
}

/// Read-only questions the planner asks about the host filesystem.
pub trait HostFs {
    /// realpath(3), as the invoking user.
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf>;
    fn entry(&self, p: &Path) -> Entry;
    fn is_executable_file(&self, p: &Path) -> bool;
    /// A setuid-root file or one with file capabilities (what newuidmap needs).
    fn is_privileged_helper(&self, p: &Path) -> bool;
    /// The owner of `p` itself (a symlink's own owner, not its target's).
    fn owner(&self, p: &Path) -> Option<u32>;
    /// `entry` and `owner` together (one lstat where the host can).
    fn entry_owner(&self, p: &Path) -> (Entry, Option<u32>) {
        (self.entry(p), self.owner(p))
    }
    /// Names of the unix sockets directly in directory `p` (not below it).
    fn sockets_in(&self, p: &Path) -> Vec<std::ffi::OsString>;
    /// The names in directory `p` (empty if it cannot be read).
    fn names_in(&self, p: &Path) -> Vec<std::ffi::OsString>;
    /// A small file (at most 64 KiB), as the user: see [`HostFs::read_file`].
    fn read_small(&self, p: &Path) -> Option<Vec<u8>> {
        self.read_file(p, 64 * 1024)
    }
    /// access(2) as the user: `mode` of R_OK, W_OK, X_OK (a directory made or
    /// entered through a bind needs the host's permission).
    fn access(&self, _p: &Path, _mode: i32) -> bool {
        true
    }
    /// This process's /proc/self/mountinfo (empty where there is none to ask).
    fn mountinfo(&self) -> String {
        String::new()
    }
    /// The extended attribute `name` of `p` itself (e.g. systemd's `user.delegate`
    /// on a cgroup it delegated).
    fn xattr(&self, _p: &Path, _name: &str) -> Option<Vec<u8>> {
        None
    }
    /// A regular file of at most `max` bytes, opened as the user without following a
    /// symlink and without blocking (a planted FIFO must not hang sbx); None
    /// otherwise.
    fn read_file(&self, p: &Path, max: u64) -> Option<Vec<u8>>;
}

pub struct RealFs;

impl HostFs for RealFs {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(p)
    }

    fn entry(&self, p: &Path) -> Entry {
        match std::fs::symlink_metadata(p) {
            Err(_) => Entry::Missing,
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(p) {
                Ok(t) => Entry::Symlink(t),
                Err(_) => Entry::Other,
            },
            Ok(m) if m.is_dir() => Entry::Dir,
            Ok(m) if m.is_file() => Entry::File,
            Ok(_) => Entry::Other,
        }
    }

    fn is_executable_file(&self, p: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }

    fn is_privileged_helper(&self, p: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::metadata(p) else {
            return false;
        };
        if m.uid() == 0 && m.mode() & libc::S_ISUID != 0 {
            return true;
        }
        crate::sys::has_xattr(&crate::sys::cstr(p.as_os_str()), c"security.capability")
    }

    fn owner(&self, p: &Path) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).ok().map(|m| m.uid())
    }

    fn access(&self, p: &Path, mode: i32) -> bool {
        crate::sys::access(&crate::sys::cstr(p.as_os_str()), mode)
    }

    fn mountinfo(&self) -> String {
        std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
    }

    fn xattr(&self, p: &Path, name: &str) -> Option<Vec<u8>> {
        let name = std::ffi::CString::new(name).ok()?;
        crate::sys::lgetxattr(&crate::sys::cstr(p.as_os_str()), &name)
    }

    fn entry_owner(&self, p: &Path) -> (Entry, Option<u32>) {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(p) {
            Err(_) => (Entry::Missing, None),
            Ok(m) => {
                let e = if m.file_type().is_symlink() {
                    std::fs::read_link(p).map_or(Entry::Other, Entry::Symlink)
                } else if m.is_dir() {
                    Entry::Dir
                } else if m.is_file() {
                    Entry::File
                } else {
                    Entry::Other
                };
                (e, Some(m.uid()))
            }
        }
    }

    fn sockets_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        use std::os::unix::fs::FileTypeExt;
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                    .map(|e| e.file_name())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn names_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    }

    fn read_file(&self, p: &Path, max: u64) -> Option<Vec<u8>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
            .ok()?;
        let m = f.metadata().ok()?;
        if !m.is_file() || m.len() > max {
            return None;
        }
        let mut v = Vec::new();
        f.take(max).read_to_end(&mut v).ok()?;
        Some(v)
    }
}

/// The host as one plan sees it: each path looked up once (`lstat`, `readlink`,
/// the owner), so the many questions a plan asks about the same paths (profile path
/// resolution, masks, the tree played through) cost one system call each, and all of
/// them see the same answer.
pub struct CachedFs<'a> {
    inner: &'a dyn HostFs,
    entries: std::cell::RefCell<std::collections::HashMap<PathBuf, (Entry, Option<u32>)>>,
}

impl<'a> CachedFs<'a> {
    pub fn new(inner: &'a dyn HostFs) -> CachedFs<'a> {
        CachedFs {
            inner,
            entries: Default::default(),
        }
    }

    fn look(&self, p: &Path) -> (Entry, Option<u32>) {
        if let Some(v) = self.entries.borrow().get(p) {
            return v.clone();
        }
        let v = self.inner.entry_owner(p);
        self.entries.borrow_mut().insert(p.to_path_buf(), v.clone());
        v
    }
}

impl HostFs for CachedFs<'_> {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        self.inner.canonicalize(p)
    }
    fn entry(&self, p: &Path) -> Entry {
        self.look(p).0
    }
    fn is_executable_file(&self, p: &Path) -> bool {
        self.inner.is_executable_file(p)
    }
    fn is_privileged_helper(&self, p: &Path) -> bool {
        self.inner.is_privileged_helper(p)
    }
    fn owner(&self, p: &Path) -> Option<u32> {
        self.look(p).1
    }
    fn sockets_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        self.inner.sockets_in(p)
    }
    fn names_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        self.inner.names_in(p)
    }
    fn read_file(&self, p: &Path, max: u64) -> Option<Vec<u8>> {
        self.inner.read_file(p, max)
    }
    fn access(&self, p: &Path, mode: i32) -> bool {
        self.inner.access(p, mode)
    }
    fn mountinfo(&self) -> String {
        self.inner.mountinfo()
    }
    fn xattr(&self, p: &Path, name: &str) -> Option<Vec<u8>> {
        self.inner.xattr(p, name)
    }
}

/// A host where every absolute path is an existing directory: for checking a
/// profile's syntax and rules without touching the real filesystem (fuzzing).
pub struct ImaginaryFs;

impl HostFs for ImaginaryFs {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        if p.is_absolute() {
            Ok(p.to_path_buf())
        } else {
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        }
    }
    fn entry(&self, p: &Path) -> Entry {
        if p.is_absolute() {
            Entry::Dir
        } else {
            Entry::Missing
        }
    }
    fn is_executable_file(&self, _: &Path) -> bool {
        false
    }
    fn is_privileged_helper(&self, _: &Path) -> bool {
        false
    }
    fn owner(&self, _: &Path) -> Option<u32> {
        Some(0)
    }
    fn sockets_in(&self, _: &Path) -> Vec<std::ffi::OsString> {
        Vec::new()
    }
    fn names_in(&self, _: &Path) -> Vec<std::ffi::OsString> {
        Vec::new()
    }
    fn read_file(&self, _: &Path, _: u64) -> Option<Vec<u8>> {
        None
    }
}

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub home: PathBuf,
    /// `home` with its symlinks resolved (e.g. /home -> /var/home), for comparisons
    /// with resolved bind sources.
    pub home_real: PathBuf,
    /// The invoking working directory, if it could be read.
    pub cwd: Option<PathBuf>,
    /// A symlink not owned by root that `$PWD` (the way the shell reached `cwd`)
    /// crosses: (the link, the owner). A sandbox may have planted it.
    pub cwd_via: Option<(PathBuf, Option<u32>)>,
    pub env: Vec<(OsString, OsString)>,
    pub subuid: Vec<SubidRange>,
    pub subgid: Vec<SubidRange>,
    /// The user's subordinate ranges that overlap another user's, line by line.
    pub subid_overlaps: Vec<String>,
    /// The kernel's Landlock ABI (None: no Landlock).
    pub landlock_abi: Option<i64>,
    /// /dev/net/tun is readable and writable by the user (pasta needs it).
    pub tun_usable: bool,
    /// sbx's own pid (names per-launch host paths, such as the D-Bus proxy's socket).
    pub pid: u32,
    /// no_new_privs is set on sbx itself (inside sbx, or a container that sets it):
    /// setuid helpers gain nothing.
    pub no_new_privs: bool,
    /// The terminal sbx was given (the device of the first of fds 0–2 that is one,
    /// e.g. /dev/pts/3), shown inside as /dev/console.
    pub tty: Option<PathBuf>,
    /// This process's own /proc/self/uid_map and gid_map.
    pub uid_map: String,
    pub gid_map: String,
    /// sbx's own hard rlimits, by `[limits]` name: a sandbox cannot raise them.
    pub rlimit_hard: Vec<(String, u64)>,
    /// (/proc/self/cgroup, sbx's start time): where cgroup limits look for delegation,
    /// and with `pid` the name of sbx's leaf. Read on first use, so a launch without
    /// cgroup limits reads neither.
    pub cgroup_self: std::cell::OnceCell<(String, u64)>,
}

/// The setuid helpers from shadow's `uidmap` package, by absolute path only: sbx
/// never searches PATH for a program it runs with privilege.
pub const NEWUIDMAP: &str = "/usr/bin/newuidmap";
pub const NEWGIDMAP: &str = "/usr/bin/newgidmap";

impl Host {
    /// A variable of sbx's environment.
    pub fn var(&self, k: &str) -> Option<&OsString> {
        self.env.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    /// /proc/self/cgroup and sbx's start time (see `cgroup_self`).
    pub fn cgroup_self(&self) -> &(String, u64) {
        self.cgroup_self.get_or_init(|| {
            (
                std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
                crate::record::start_time(std::process::id() as i32).unwrap_or(0),
            )
        })
    }

    pub fn gather() -> Host {
        let (uid, gid) = (crate::sys::getuid(), crate::sys::getgid());
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // /etc/passwd is read directly rather than through NSS so a static build works;
        // the environment is the fallback for users that only exist in a directory service.
        let pw = passwd_entry(uid);
        let user = pw
            .as_ref()
            .map(|(n, _)| n.clone())
            .or_else(|| var("USER").and_then(|v| v.into_string().ok()))
            .unwrap_or_else(|| uid.to_string());
        let home = var("HOME")
            .filter(|h| Path::new(h).is_absolute())
            .map(PathBuf::from)
            .or_else(|| pw.map(|(_, h)| h))
            .unwrap_or_else(|| PathBuf::from("/"));
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cwd = std::env::current_dir().ok();
        let (subuid_text, subgid_text) = (read("/etc/subuid"), read("/etc/subgid"));
        let mut subid_overlaps = subid_overlaps("/etc/subuid", &subuid_text, &user, uid);
        subid_overlaps.extend(crate::userns::subid_overlaps(
            "/etc/subgid",
            &subgid_text,
            &user,
            uid,
        ));
        Host {
            uid,
            gid,
            subuid: parse_subid(&subuid_text, &user, uid),
            subgid: parse_subid(&subgid_text, &user, uid),
            subid_overlaps,
            user,
            home_real: std::fs::canonicalize(&home).unwrap_or_else(|_| home.clone()),
            home,
            cwd_via: cwd_via(var("PWD").as_deref(), cwd.as_deref()),
            cwd,
            env,
            landlock_abi: crate::landlock::abi(),
            pid: std::process::id(),
            no_new_privs: crate::sys::prctl_get(libc::PR_GET_NO_NEW_PRIVS) == Ok(1),
            tty: inherited_tty(),
            uid_map: read("/proc/self/uid_map"),
            gid_map: read("/proc/self/gid_map"),
            rlimit_hard: crate::exec::hard_rlimits(),
            cgroup_self: std::cell::OnceCell::new(),
            tun_usable: crate::sys::access(c"/dev/net/tun", libc::R_OK | libc::W_OK),
        }
    }
}

/// The device path of the first of fds 0–2 that is a terminal, when that path names
/// the very terminal here: inside another sandbox (a devpts of its own) the name
/// the kernel gives may be absent, or another terminal with the same number.
fn inherited_tty() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    (0..3).find_map(|fd| {
        // A terminal (isatty(3) is this query).
        crate::sys::tcgetattr(fd)?;
        let st = crate::sys::fstat_number(fd)?;
        // The kernel's name for it, or /dev/console (where sbx itself shows it: sbx
        // inside sbx).
        let named = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .ok()
            .filter(|p| p.starts_with("/dev/"));
        named
            .into_iter()
            .chain([PathBuf::from("/dev/console")])
            .find(|p| {
                std::fs::metadata(p).is_ok_and(|m| m.dev() == st.st_dev && m.ino() == st.st_ino)
            })
    })
}

/// The first symlink not owned by root on `pwd`, when `pwd` names `cwd` (a shell's
/// logical path): getcwd(3) gives the real directory, and only $PWD tells that the
/// user reached it through a link.
fn cwd_via(pwd: Option<&std::ffi::OsStr>, cwd: Option<&Path>) -> Option<(PathBuf, Option<u32>)> {
    let (pwd, cwd) = (Path::new(pwd?), cwd?);
    if !pwd.is_absolute() || pwd == cwd || std::fs::canonicalize(pwd).ok()? != cwd {
        return None;
    }
    match crate::plan::trust::resolve_profile_path(&RealFs, pwd, None) {
        Err(crate::plan::trust::Unresolved::Planted { link, owner, .. }) => Some((link, owner)),
        _ => None,
    }
}

fn passwd_entry(uid: u32) -> Option<(String, PathBuf)> {
    let text = std::fs::read("/etc/passwd").ok()?;
    for line in text.split(|b| *b == b'\n') {
        let f: Vec<&[u8]> = line.split(|b| *b == b':').collect();
        if f.len() >= 6
            && std::str::from_utf8(f[2])
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                == Some(uid)
        {
            let name = String::from_utf8_lossy(f[0]).into_owned();
            return Some((name, PathBuf::from(OsString::from_vec(f[5].to_vec()))));
        }
    }
    None
}

//! Memory, CPU and process ceilings through cgroup v2 (`--memory`, `--cpus`,
//! `--pids`, `[limits]`), where the host delegates a cgroup subtree to the user.
//!
//! Two parts (README, "Resource limits"; sbx(1), LIMITS). The pure part reads `/proc/self/cgroup` and the mount
//! table and decides: where the delegated subtree is, whether it has the
//! controllers, which leaf to make and what to write in it. The writing part makes
//! the leaf before the sandbox exists, PID 1 is cloned straight into it
//! (`CLONE_INTO_CGROUP`, so not one of the sandbox's processes runs outside it), and
//! the launcher removes it once PID 1 has been reaped, by which time the kernel has
//! killed and reaped everything in the sandbox's pid namespace.
//!
//! Where the leaf goes (`find`), two layouts:
//! - **systemd**: under the user manager (`user@UID.service`), every cgroup is the
//!   user's, but systemd alone writes them: it rewrites a slice's
//!   `cgroup.subtree_control` when its units change, which would take the
//!   controllers from a leaf sbx put there, mid-run and silently. So sbx needs its own
//!   cgroup to be one systemd delegated (`systemd-run --user --scope -p Delegate=yes
//!   sbx ...`; systemd marks it with the `user.delegate` or `trusted.delegate`
//!   xattr, systemd.io/CGROUP_DELEGATION). sbx moves itself into a child
//!   `sbx-PID-START.launcher` (a cgroup that hands controllers to children may hold
//!   no process, cgroup-v2.rst "No Internal Process Constraint") and makes the leaf
//!   beside it.
//! - **administrator**: elsewhere, the parent of sbx's cgroup, when that parent and
//!   its `cgroup.procs` and `cgroup.subtree_control` are the user's (cgroup-v2.rst
//!   "Delegation": the administrator chowns them and starts the user's session in a
//!   child). The leaf goes in that parent.
//!
//! Either way the kernel lets a process move another only with write access to
//! `cgroup.procs` of their common ancestor ("Delegation Containment"), which is the
//! delegated cgroup. The hierarchy must be mounted with `nsdelegate` (systemd does):
//! without it, a sandbox that can mount cgroup2 (a nesting profile) could write its
//! own leaf's limits, whose files belong to the user it runs as; with it, the root of
//! the sandbox's cgroup namespace (the leaf) is read-only from inside.
//!
//! A leaf is named `sbx-PID-START` after the launcher (its pid and start time), so a
//! later launch can tell a leaf whose launcher died (SIGKILL) from a live one and
//! remove it. cgroup v1 is never used: the v1 memory and pids controllers cannot
//! be delegated safely to an unprivileged user, and the hybrid layout binds them
//! away from v2 (the error says so).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::HostFs;

/// cpu.max's period, microseconds (the kernel's default, cgroup-v2.rst "cpu.max").
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel takes (1 ms per period).
const CPU_MIN_QUOTA_US: u64 = 1_000;

/// The ceilings asked for, before delegation is looked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// memory.max, bytes.
    pub memory: Option<u64>,
    /// CPUs' worth of time per period (0.5 = half of one CPU).
    pub cpus: Option<f64>,
    /// pids.max.
    pub pids: Option<u64>,
}

// cpus is checked finite when parsed (plan::limits), so equality is an equivalence.
impl Eq for Request {}

impl Request {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.pids.is_none()
    }

    /// The v2 controllers these ceilings need.
    pub fn controllers(&self) -> Vec<&'static str> {
        [
            (self.cpus.is_some(), "cpu"),
            (self.memory.is_some(), "memory"),
            (self.pids.is_some(), "pids"),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
        .collect()
    }

    /// What is written in the leaf: (file, value, required). memory.swap.max = 0 so
    /// that the memory ceiling is one (a hog swapped out instead of killed would
    /// still take the machine's swap); it exists only where swap is accounted.
    pub fn writes(&self) -> Vec<(String, String, bool)> {
        // Cgroups the sandbox may make below its leaf (a nested container runtime):
        // few, and removed with it (`remove_tree`).
        let mut w = vec![("cgroup.max.descendants".to_string(), "64".to_string(), true)];
        if let Some(m) = self.memory {
            w.push(("memory.max".into(), m.to_string(), true));
            w.push(("memory.swap.max".into(), "0".into(), false));
        }
        if let Some(c) = self.cpus {
            w.push(("cpu.max".into(), cpu_max(c), true));
        }
        if let Some(p) = self.pids {
            w.push(("pids.max".into(), p.to_string(), true));
        }
        w
    }
}

/// `cpu.max` for a fractional CPU count: "QUOTA PERIOD" in microseconds.
pub fn cpu_max(cpus: f64) -> String {
    let quota = ((cpus * CPU_PERIOD_US as f64).round() as u64).max(CPU_MIN_QUOTA_US);
    format!("{quota} {CPU_PERIOD_US}")
}

/// What the launcher does: the leaf to make in `parent`, with the controllers to
/// turn on for the parent's children first and the files to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    pub parent: PathBuf,
    pub leaf: String,
    /// systemd layout: the child of `parent` the launcher moves into first.
    #[serde(default)]
    pub launcher: Option<String>,
    pub enable: Vec<String>,
    pub writes: Vec<(String, String, bool)>,
    pub request: Request,
}

impl CgroupPlan {
    pub fn dir(&self) -> PathBuf {
        self.parent.join(&self.leaf)
    }
}

/// Why no delegated subtree can take the limits; `explain` says how to get one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No cgroup2 file system is mounted (a cgroup v1-only host).
    NoCgroup2,
    /// /proc/self/cgroup has no `0::` line, or it names no directory of a mount.
    NotInV2,
    /// The cgroup2 mount is read-only (a container without delegation).
    ReadOnly(PathBuf),
    /// sbx runs in the root cgroup of the mount at this path: nothing above it.
    RootCgroup(PathBuf),
    /// sbx's cgroup's parent is not the user's: (sbx's cgroup, its parent, owner).
    NotDelegated(PathBuf, PathBuf, Option<u32>),
    /// Under the systemd user manager, sbx's own cgroup is not a delegated one.
    SystemdNotDelegated(PathBuf),
    /// The hierarchy is mounted without `nsdelegate`.
    NoNsdelegate(PathBuf),
    /// Delegated, but without these controllers: (parent, missing, v1 mounts of them).
    Controllers(PathBuf, Vec<&'static str>, Vec<(String, String)>),
}

impl Missing {
    pub fn explain(&self) -> String {
        let how =
            "start sbx in a scope your systemd user manager delegates (`systemd-run --user \
                   --scope -p Delegate=yes sbx ...`), or have the administrator delegate a cgroup v2 directory to you and start your \
                   session in a child of it (sbx(1), LIMITS)";
        match self {
            Missing::NoCgroup2 => "no cgroup v2 hierarchy is mounted (this host uses cgroup v1 only); \
                 boot with systemd.unified_cgroup_hierarchy=1 to get one"
                .into(),
            Missing::NotInV2 => format!("sbx's own cgroup v2 directory cannot be found; {how}"),
            Missing::ReadOnly(m) => format!(
                "the cgroup v2 hierarchy at {} is mounted read-only (a container without cgroup \
                 delegation); {how}",
                m.display()
            ),
            Missing::RootCgroup(m) => format!(
                "sbx runs in the root cgroup of the hierarchy at {}, which is never delegated; {how}",
                m.display()
            ),
            Missing::NotDelegated(me, parent, owner) => format!(
                "sbx runs in cgroup {}, and its parent {} {}: no cgroup is delegated to you \
                 here; {how}",
                me.display(),
                parent.display(),
                match owner {
                    Some(o) => format!("belongs to uid {o}"),
                    None => "cannot be read".into(),
                }
            ),
            Missing::SystemdNotDelegated(me) => format!(
                "sbx runs in {}, under the systemd user manager, which delegates no cgroup \
                 to it: start sbx in a delegated scope, `systemd-run --user --scope -p \
                 Delegate=yes sbx ...`",
                me.display()
            ),
            Missing::NoNsdelegate(m) => format!(
                "the cgroup v2 hierarchy at {} is mounted without nsdelegate, so a sandbox \
                 able to mount it could raise its own limits; remount it with nsdelegate \
                 (`mount -o remount,nsdelegate {}`, as systemd mounts it)",
                m.display(),
                m.display()
            ),
            Missing::Controllers(parent, missing, v1) => {
                let v1: Vec<String> = v1
                    .iter()
                    .map(|(c, at)| format!("{c} is bound to cgroup v1 at {at}"))
                    .collect();
                format!(
                    "the delegated cgroup {} does not offer the {} controller{} (its \
                     cgroup.controllers){}; the administrator can enable {} for it (systemd: \
                     Delegate={} on user@.service){}",
                    parent.display(),
                    missing.join(", "),
                    if missing.len() > 1 { "s" } else { "" },
                    if v1.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", v1.join(", "))
                    },
                    if missing.len() > 1 { "them" } else { "it" },
                    missing.join(" "),
                    if v1.is_empty() {
                        ""
                    } else {
                        ", and boot with systemd.unified_cgroup_hierarchy=1 (sbx uses cgroup v2 only)"
                    }
                )
            }
        }
    }
}

/// What the host binds to cgroup v1 of the controllers `req` needs, as a sentence
/// to add to any `Missing` (a hybrid host: the reason no delegation would help).
pub fn v1_note(mountinfo: &str, req: &Request) -> Option<String> {
    let want = req.controllers();
    let v1: Vec<String> = v1_controllers(mountinfo)
        .into_iter()
        .filter(|(c, _)| want.contains(&c.as_str()))
        .map(|(c, at)| format!("{c} at {at}"))
        .collect();
    (!v1.is_empty()).then(|| {
        format!(
            "; besides, this host binds {} to cgroup v1, which sbx does not use (boot with \
             systemd.unified_cgroup_hierarchy=1)",
            v1.join(", ")
        )
    })
}

/// One cgroup2 mount: (its root within the hierarchy, where it is mounted, read-only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cgroup2Mount {
    root: String,
    point: PathBuf,
    ro: bool,
    nsdelegate: bool,
}

/// The fields of a mountinfo line that matter here: (root, mount point, mount
/// options, fstype, super options). proc(5): fields 4, 5, 6, then after " - ".
fn mountinfo_fields(line: &str) -> Option<(String, String, &str, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    Some((unescape(l[3]), unescape(l[4]), l[5], r[0], r[2]))
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cgroup2_mounts(mountinfo: &str) -> Vec<Cgroup2Mount> {
    mountinfo
        .lines()
        .filter_map(mountinfo_fields)
        .filter(|(_, _, _, fstype, _)| *fstype == "cgroup2")
        .map(|(root, point, opts, _, sopts)| Cgroup2Mount {
            root,
            point: PathBuf::from(point),
            ro: opts.split(',').any(|o| o == "ro"),
            nsdelegate: sopts.split(',').any(|o| o == "nsdelegate"),
        })
        .collect()
}

/// Where cgroup v2 is mounted (every mount of it).
pub fn cgroup2_points(mountinfo: &str) -> Vec<PathBuf> {
    cgroup2_mounts(mountinfo)
        .into_iter()
        .map(|m| m.point)
        .collect()
}

/// Controllers the host mounts as cgroup v1: (controller, mount point).
fn v1_controllers(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(mountinfo_fields)
        .filter(|(_, _, _, fstype, _)| *fstype == "cgroup")
        .flat_map(|(_, point, _, _, sopts)| {
            sopts
                .split(',')
                .map(|o| (o.to_string(), point.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The path of sbx's own cgroup in the v2 hierarchy: the `0::` line of
/// /proc/self/cgroup (cgroups(7)).
fn own_cgroup(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| p.starts_with('/'))
}

/// Where the leaf goes: the delegated cgroup the leaf is made in, the controllers to
/// turn on there, and (systemd layout) that the launcher moves into a child first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub parent: PathBuf,
    pub enable: Vec<&'static str>,
    pub launcher_moves: bool,
}

/// Delegated to `uid`: the directory and the two files a delegate writes are the
/// user's (cgroup-v2.rst "Delegation": chown of the directory, cgroup.procs,
/// cgroup.subtree_control).
fn owned(fs: &dyn HostFs, dir: &Path, uid: u32) -> bool {
    fs.owner(dir) == Some(uid)
        && ["cgroup.procs", "cgroup.subtree_control"]
            .iter()
            .all(|f| fs.owner(&dir.join(f)) == Some(uid))
}

/// systemd's mark on a cgroup it delegated (systemd.io/CGROUP_DELEGATION).
fn marked_delegated(fs: &dyn HostFs, dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|n| fs.xattr(dir, n).as_deref() == Some(b"1"))
}

/// Where the leaf goes, or why it cannot: the pure part, from /proc/self/cgroup, the
/// mount table and the owners, xattrs and `cgroup.controllers` of the directories.
pub fn find(
    uid: u32,
    proc_cgroup: &str,
    mountinfo: &str,
    fs: &dyn HostFs,
    req: &Request,
) -> std::result::Result<Delegation, Missing> {
    let mounts = cgroup2_mounts(mountinfo);
    if mounts.is_empty() {
        return Err(Missing::NoCgroup2);
    }
    let own = own_cgroup(proc_cgroup).ok_or(Missing::NotInV2)?;
    // The mount that shows sbx's cgroup: its root is sbx's cgroup or above it. A
    // hybrid host mounts v2 at /sys/fs/cgroup/unified, a unified one at /sys/fs/cgroup.
    let mount = mounts
        .iter()
        .filter(|m| m.root == "/" || own == m.root || own.starts_with(&format!("{}/", m.root)))
        .min_by_key(|m| m.point != Path::new("/sys/fs/cgroup"))
        .ok_or(Missing::NotInV2)?;
    let rel = own
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(own)
        .trim_start_matches('/');
    let me = if rel.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    };
    if mount.ro {
        return Err(Missing::ReadOnly(mount.point.clone()));
    }
    let (parent, launcher_moves) = delegated_parent(fs, uid, &me, rel, &mount.point)?;
    let read = |f: &str| {
        fs.read_small(&parent.join(f))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let offered = read("cgroup.controllers");
    let missing: Vec<&'static str> = req
        .controllers()
        .into_iter()
        .filter(|c| !offered.split_whitespace().any(|o| o == *c))
        .collect();
    if !missing.is_empty() {
        let v1 = v1_controllers(mountinfo)
            .into_iter()
            .filter(|(c, _)| missing.contains(&c.as_str()))
            .collect();
        return Err(Missing::Controllers(parent, missing, v1));
    }
    if !mount.nsdelegate {
        return Err(Missing::NoNsdelegate(mount.point.clone()));
    }
    let on = read("cgroup.subtree_control");
    let enable = req
        .controllers()
        .into_iter()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    Ok(Delegation {
        parent,
        enable,
        launcher_moves,
    })
}

/// The cgroup sbx's leaf goes in, and whether the launcher must move into a child
/// of its own first: under systemd (`user@UID.service`) only a scope it delegated,
/// elsewhere the parent of sbx's cgroup when the user owns it.
fn delegated_parent(
    fs: &dyn HostFs,
    uid: u32,
    me: &Path,
    rel: &str,
    mount_point: &Path,
) -> std::result::Result<(PathBuf, bool), Missing> {
    let systemd = rel.split('/').any(|c| {
        c.strip_prefix("user@")
            .and_then(|c| c.strip_suffix(".service"))
            .is_some_and(|n| !n.is_empty())
    });
    if systemd {
        if !(owned(fs, me, uid) && marked_delegated(fs, me)) {
            return Err(Missing::SystemdNotDelegated(me.to_path_buf()));
        }
        return Ok((me.to_path_buf(), true));
    }
    // The root of the mount has no parent within it (and the hierarchy's root is never
    // delegated).
    let parent = match me.parent() {
        Some(p) if me != mount_point && p.starts_with(mount_point) => p.to_path_buf(),
        _ => return Err(Missing::RootCgroup(mount_point.to_path_buf())),
    };
    if !owned(fs, &parent, uid) {
        let owner = fs.owner(&parent);
        return Err(Missing::NotDelegated(me.to_path_buf(), parent, owner));
    }
    Ok((parent, false))
}

/// The leaf's name for a launcher: its pid and start time (proc(5) stat field 22),
/// which together name one process for the whole uptime.
pub fn leaf_name(pid: u32, start: u64) -> String {
    format!("sbx-{pid}-{start}")
}

/// The cgroup a launcher moves itself into (systemd layout), beside its leaf.
pub fn launcher_name(leaf: &str) -> String {
    format!("{leaf}.launcher")
}

/// The launcher a leaf (or launcher cgroup) name stands for.
pub fn leaf_owner(name: &str) -> Option<(u32, u64)> {
    let name = name.strip_suffix(".launcher").unwrap_or(name);
    let (pid, start) = name.strip_prefix("sbx-")?.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Remove `dir` and the cgroups below it, deepest first (rmdir refuses a cgroup
/// with children); the sandbox may have made some (up to cgroup.max.descendants).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Kill what is left in a leaf (`cgroup.kill`, Linux 5.14) and wait, up to
/// `limit`, for `cgroup.events` to say it is empty (the file polls with POLLPRI on
/// change). False when it is not.
fn kill_and_wait(dir: &Path, limit: std::time::Duration) -> bool {
    use std::io::{Read, Seek};
    let _ = write_file(&dir.join("cgroup.kill"), "1");
    let Ok(mut f) = std::fs::File::open(dir.join("cgroup.events")) else {
        return true;
    };
    let start = std::time::Instant::now();
    loop {
        let mut text = String::new();
        let _ = f.rewind();
        let _ = f.read_to_string(&mut text);
        if text.lines().any(|l| l == "populated 0") {
            return true;
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        crate::sys::poll_priority(std::os::fd::AsFd::as_fd(&f), left);
    }
}

/// Remove the leaves (and launcher cgroups) in `parent` whose launcher is gone
/// (killed before it could remove its own): what is left in them is killed first.
/// Returns what was removed; a leaf whose processes have not died yet stays for the
/// next launch.
pub fn remove_stale(parent: &Path, uid: u32) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name();
        let Some((pid, start)) = name.to_str().and_then(leaf_owner) else {
            continue;
        };
        let ours = e.metadata().is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if ours && crate::record::start_time(pid as i32) != Some(start) {
            kill_and_wait(&e.path(), std::time::Duration::ZERO);
            if remove_tree(&e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// A sandbox's leaf, made and filled; PID 1 is cloned into `fd`.
pub struct Leaf {
    pub dir: PathBuf,
    pub fd: OwnedFd,
}

/// Make the leaf: stale leaves out, the controllers on, the directory, its limits.
pub fn create(plan: &CgroupPlan, uid: u32) -> Result<Leaf> {
    for gone in remove_stale(&plan.parent, uid) {
        crate::trace::step("launcher", || {
            format!("removed stale cgroup {}", gone.display())
        });
    }
    let step = "cgroup limits";
    if let Some(l) = &plan.launcher {
        // systemd layout: out of the delegated cgroup, so that it can hand its
        // controllers to the leaf.
        let dir = plan.parent.join(l);
        std::fs::create_dir(&dir)
            .map_err(|e| Error::sys(step, format!("mkdir {}", dir.display()), errno_of(&e)))?;
        let procs = dir.join("cgroup.procs");
        write_file(&procs, "0").map_err(|e| {
            Error::sys(
                step,
                format!("write 0 to {}", procs.display()),
                errno_of(&e),
            )
        })?;
    }
    if !plan.enable.is_empty() {
        let ctl = plan.parent.join("cgroup.subtree_control");
        let v: Vec<String> = plan.enable.iter().map(|c| format!("+{c}")).collect();
        write_file(&ctl, &v.join(" ")).map_err(|e| {
            let hint = if errno_of(&e) == libc::EBUSY {
                " (the cgroup holds processes of its own: a cgroup with processes cannot \
                 pass controllers to children; start sbx alone in it)"
            } else {
                ""
            };
            Error::sys(
                step,
                format!("write {:?} to {}{hint}", v.join(" "), ctl.display()),
                errno_of(&e),
            )
        })?;
    }
    let dir = plan.dir();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(|e| Error::sys(step, format!("mkdir {}", dir.display()), errno_of(&e)))?;
    }
    let fill = || -> Result<OwnedFd> {
        for (file, value, required) in &plan.writes {
            let p = dir.join(file);
            match write_file(&p, value) {
                Ok(()) => {}
                Err(e) if !required && errno_of(&e) == libc::ENOENT => {}
                Err(e) => {
                    return Err(Error::sys(
                        step,
                        format!("write {value:?} to {}", p.display()),
                        errno_of(&e),
                    ))
                }
            }
        }
        let c = crate::sys::cstr(dir.as_os_str());
        crate::sys::open(&c, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| Error::sys(step, format!("open {}", dir.display()), e.errno))
    };
    match fill() {
        Ok(fd) => {
            crate::trace::step("launcher", || format!("made cgroup {}", dir.display()));
            Ok(Leaf { dir, fd })
        }
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

impl Leaf {
    /// Remove the leaf once the sandbox has ended. PID 1 has been reaped, so every
    /// process of its pid namespace has exited; what may be left is outside it (an
    /// `--enter` that joined the leaf), and is killed: the sandbox is over.
    pub fn remove(self) {
        drop(self.fd);
        let empty = kill_and_wait(&self.dir, std::time::Duration::from_secs(2));
        if let (Err(e), _) | (_, Err(e)) = (
            if empty {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(libc::EBUSY))
            },
            remove_tree(&self.dir),
        ) {
            eprintln!(
                "sbx: cgroup limits: rmdir {}: {} (the next launch with limits removes it)",
                crate::text::escape(&self.dir.display().to_string()),
                e
            );
        }
    }
}

/// Move the calling process into a running sandbox's leaf (`--enter`: what it runs
/// is held by the sandbox's ceilings too). The leaf must carry the name of the
/// sandbox's launcher, alive: a record naming another cgroup is refused. The kernel
/// wants write access to `cgroup.procs` of the common ancestor, so this works from
/// the delegated subtree the sandbox was started in; elsewhere it fails, and so
/// does `--enter` (never a process of the sandbox outside its ceilings).
pub fn join(plan: &CgroupPlan, launcher: i32, pid1: i32) -> Result<()> {
    let step = "join the sandbox's cgroup";
    let live = crate::record::start_time(launcher);
    // The leaf must be the launcher's and hold the sandbox's PID 1 (pids as seen
    // here, the host's).
    let holds = std::fs::read_to_string(plan.dir().join("cgroup.procs"))
        .is_ok_and(|t| t.lines().any(|l| l == pid1.to_string()));
    if leaf_owner(&plan.leaf) != live.map(|s| (launcher as u32, s)) || !holds {
        return Err(Error::new(
            step,
            format!(
                "the record's cgroup {} is not its launcher's (pid {launcher}), or does not \
                 hold the sandbox's PID 1 ({pid1})",
                plan.dir().display()
            ),
        ));
    }
    let procs = plan.dir().join("cgroup.procs");
    write_file(&procs, "0").map_err(|e| {
        let hint = if errno_of(&e) == libc::EACCES {
            " (the kernel allows it only from the delegated subtree the sandbox was started \
             in: run --enter from there)"
        } else {
            ""
        };
        Error::sys(
            step,
            format!("write 0 to {}{hint}", procs.display()),
            errno_of(&e),
        )
    })
}

/// Current usage in a leaf, for `--inspect` and `--list --json`: (name, value).
pub fn usage(dir: &Path) -> Vec<(String, String)> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut out = Vec::new();
    for f in ["memory.current", "memory.peak", "pids.current"] {
        if let Some(v) = read(f) {
            out.push((f.to_string(), v));
        }
    }
    if let Some(stat) = read("cpu.stat") {
        if let Some(u) = stat.lines().find_map(|l| l.strip_prefix("usage_usec ")) {
            out.push(("cpu.usage_usec".into(), u.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests;

//! Memory, CPU and process ceilings through cgroup v2 (`--memory`, `--cpus`,
//! `--pids`, `[limits]`), where the host delegates a cgroup subtree to the user.
//!
//! Two parts (DESIGN.md §5). The pure part reads `/proc/self/cgroup` and the mount
//! table and decides: where the delegated subtree is, whether it has the
//! controllers, which leaf to make and what to write in it. The writing part makes
//! the leaf before the sandbox exists, PID 1 is cloned straight into it
//! (`CLONE_INTO_CGROUP`, so not one of the sandbox's processes runs outside it), and
//! the launcher removes it once PID 1 has been reaped, by which time the kernel has
//! killed and reaped everything in the sandbox's pid namespace.
//!
//! Where the leaf goes: beside the cgroup sbx runs in, when that cgroup's parent is
//! owned by the user. That is the systemd user manager's layout (everything under
//! `user@UID.service` belongs to the user; a terminal runs in a scope under
//! `app.slice`, and `systemd-run --user --scope sbx ...` makes one), and the layout
//! an administrator gives by delegating a directory (chown of the directory, its
//! `cgroup.procs` and `cgroup.subtree_control`; cgroup-v2.rst "Delegation") and
//! starting the user's session in a child of it. The kernel lets a process move
//! another only with write access to `cgroup.procs` of their common ancestor
//! (cgroup-v2.rst "Delegation Containment"): the parent is that ancestor.
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
        let mut w = Vec::new();
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
    /// Delegated, but without these controllers: (parent, missing, v1 mounts of them).
    Controllers(PathBuf, Vec<&'static str>, Vec<(String, String)>),
}

impl Missing {
    pub fn explain(&self) -> String {
        let how =
            "run sbx under your systemd user manager (`systemd-run --user --scope sbx ...`), \
                   or have the administrator delegate a cgroup v2 directory to you and start your \
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
        .map(|(root, point, opts, _, _)| Cgroup2Mount {
            root,
            point: PathBuf::from(point),
            ro: opts.split(',').any(|o| o == "ro"),
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

/// Where the leaf goes, or why it cannot: the pure part, from /proc/self/cgroup, the
/// mount table and the owners (and `cgroup.controllers`) of the directories.
pub fn find(
    uid: u32,
    proc_cgroup: &str,
    mountinfo: &str,
    fs: &dyn HostFs,
    req: &Request,
) -> std::result::Result<(PathBuf, Vec<&'static str>), Missing> {
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
    // The root of the mount has no parent within it (and the hierarchy's root is
    // never delegated).
    let parent = match me.parent() {
        Some(p) if me != mount.point && p.starts_with(&mount.point) => p.to_path_buf(),
        _ => return Err(Missing::RootCgroup(mount.point.clone())),
    };
    // Delegated: the directory and the two files a delegate writes are the user's
    // (cgroup-v2.rst "Delegation": chown of the directory, cgroup.procs,
    // cgroup.subtree_control).
    let owner = fs.owner(&parent);
    let delegated = owner == Some(uid)
        && ["cgroup.procs", "cgroup.subtree_control"]
            .iter()
            .all(|f| fs.owner(&parent.join(f)) == Some(uid));
    if !delegated {
        return Err(Missing::NotDelegated(me, parent, owner));
    }
    let offered = fs
        .read_small(&parent.join("cgroup.controllers"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
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
    let on = fs
        .read_small(&parent.join("cgroup.subtree_control"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let enable = req
        .controllers()
        .into_iter()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    Ok((parent, enable))
}

/// The leaf's name for a launcher: its pid and start time (proc(5) stat field 22),
/// which together name one process for the whole uptime.
pub fn leaf_name(pid: u32, start: u64) -> String {
    format!("sbx-{pid}-{start}")
}

/// The launcher a leaf name stands for.
pub fn leaf_owner(name: &str) -> Option<(u32, u64)> {
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

/// Remove the leaves in `parent` whose launcher is gone (killed before it could
/// remove its own); a leaf still holding processes is refused by the kernel (EBUSY)
/// and stays. Returns what was removed.
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
        if ours
            && crate::record::start_time(pid as i32) != Some(start)
            && std::fs::remove_dir(e.path()).is_ok()
        {
            removed.push(e.path());
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
    if !plan.enable.is_empty() {
        let ctl = plan.parent.join("cgroup.subtree_control");
        let v: Vec<String> = plan.enable.iter().map(|c| format!("+{c}")).collect();
        write_file(&ctl, &v.join(" ")).map_err(|e| {
            let hint = if errno_of(&e) == libc::EBUSY {
                " (the cgroup holds processes of its own: a cgroup with processes cannot \
                 pass controllers to children)"
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
    /// process of the sandbox has exited; the kernel clears `populated` as the last
    /// one exits, before the reap.
    pub fn remove(self) {
        drop(self.fd);
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!(
                "sbx: cgroup limits: rmdir {}: {} (the next launch with limits removes it)",
                crate::text::escape(&self.dir.display().to_string()),
                e
            );
        }
    }
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

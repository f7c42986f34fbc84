//! Records of running sandboxes, one JSON file per name under
//! `$XDG_RUNTIME_DIR/sbx/` (or `/tmp/sbx-UID/` without it), written by the launcher
//! once the sandbox is set up and removed when it ends; a record left by a killed
//! sbx is removed by the next sbx that reads it.
//!
//! A record is never trusted on its own (firejail CVE-2022-31214: a process that
//! only *claims* to be a sandbox was joined with root's rights). Before sbx acts on
//! one it holds a pidfd of the recorded PID 1 and checks that the process has the
//! recorded start time (no recycled pid), is the user's, is PID 1 of a pid namespace
//! of its own, and that its child, the sandbox's command (PID 1 itself is not
//! dumpable, so its namespaces cannot be read or joined), has its recorded start time
//! and sits in exactly the recorded namespaces.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::landlock::LandlockPlan;
use crate::seccomp::SeccompPlan;
use crate::sys;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub name: String,
    pub uid: u32,
    /// The sbx process that started it (host pid).
    pub launcher: i32,
    /// The sandbox's PID 1 (host pid) and its start time (clock ticks after boot).
    pub pid1: i32,
    pub pid1_start: u64,
    /// The sandbox's command process (host pid) and start time: PID 1 is not dumpable,
    /// so its namespaces are read, and joined, through its child.
    pub anchor: i32,
    pub anchor_start: u64,
    /// Unix seconds.
    pub started: u64,
    pub profile: String,
    pub command: Vec<String>,
    pub net: String,
    /// Namespace inodes of the command's process (`anchor`), by /proc/PID/ns name.
    pub namespaces: BTreeMap<String, u64>,
    /// The command's confinement, applied again to what `--enter` runs.
    pub env: Vec<(String, String)>,
    pub caps: Vec<u32>,
    pub rlimits: Vec<(String, u64)>,
    /// The sandbox's cgroup leaf and its ceilings, if it has one.
    #[serde(default)]
    pub cgroup: Option<crate::cgroup::CgroupPlan>,
    pub seccomp: SeccompPlan,
    pub landlock: LandlockPlan,
}

/// Where this user's records live, and why a preferred place was passed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// None: no usable place; sandboxes run unrecorded.
    pub dir: Option<PathBuf>,
    /// A candidate that exists but cannot be used, with why (said once per launch).
    pub problems: Vec<String>,
}

/// Where this user's records live, from the invocation's XDG_RUNTIME_DIR.
pub fn dir_for(host: &crate::host::Host) -> Located {
    locate(host.uid, host.var("XDG_RUNTIME_DIR").map(Path::new))
}

/// The first usable of `$XDG_RUNTIME_DIR/sbx`, `/run/user/UID/sbx` (logind's, when
/// the variable is lost: su, cron, ssh without a session) and `/tmp/sbx-UID`. Another
/// local user can create `/tmp/sbx-UID` first (or a symlink there): such a place is
/// passed over, never followed or written, so no other user can stop this user's sbx
/// (firejail CVE-2022-31214 is the cost of trusting a shared directory).
pub fn locate(uid: u32, runtime: Option<&Path>) -> Located {
    let mut out = Located::default();
    let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(r) = runtime.filter(|r| r.is_absolute()) {
        candidates.push((r.to_path_buf(), r.join("sbx")));
    }
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if runtime != Some(run_user.as_path()) {
        candidates.push((run_user.clone(), run_user.join("sbx")));
    }
    candidates.push(("/tmp".into(), PathBuf::from(format!("/tmp/sbx-{uid}"))));
    for (parent, d) in candidates {
        match usable(&parent, &d, uid) {
            Ok(()) => {
                out.dir = Some(d);
                return out;
            }
            // A missing /run/user/UID is the ordinary case without logind: not a problem.
            Err(None) => {}
            Err(Some(why)) => out.problems.push(why),
        }
    }
    out
}

/// Can `d` (in `parent`) hold this user's records? Err(None): the parent is simply
/// absent; Err(Some(why)): present but not safe to use.
fn usable(parent: &Path, d: &Path, uid: u32) -> std::result::Result<(), Option<String>> {
    let pm = match std::fs::symlink_metadata(parent) {
        Ok(m) => m,
        Err(_) => return Err(None),
    };
    // The parent: the user's own directory (the runtime directory), or a sticky
    // directory of root's (/tmp), where nobody can move our entry away.
    let parent_ok = pm.is_dir()
        && ((pm.uid() == uid && pm.mode() & 0o022 == 0)
            || ((pm.uid() == 0 || pm.uid() == uid) && pm.mode() & libc::S_ISVTX != 0));
    if !parent_ok {
        return Err(Some(format!(
            "{} is not a directory of yours (owner uid {}, mode {:04o})",
            parent.display(),
            pm.uid(),
            pm.mode() & 0o7777
        )));
    }
    match std::fs::symlink_metadata(d) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Some(format!("{}: {e}", d.display()))),
        Ok(m) if m.file_type().is_symlink() => Err(Some(format!(
            "{} is a symlink (owner uid {}): not followed",
            d.display(),
            m.uid()
        ))),
        Ok(m) if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 => Err(Some(format!(
            "{} is not a directory of yours with mode 0700 (owner uid {}, mode {:04o})",
            d.display(),
            m.uid(),
            m.mode() & 0o7777
        ))),
        Ok(_) => Ok(()),
    }
}

/// The one line said when a preferred place was passed over (None: nothing to say).
pub fn problems_notice(l: &Located) -> Option<String> {
    if l.problems.is_empty() {
        return None;
    }
    let outcome = match &l.dir {
        Some(d) => format!("records are kept in {} instead", d.display()),
        None => "this sandbox is not recorded (sbx --list, --enter and --kill will not see it); \
                 remove that entry, or set XDG_RUNTIME_DIR to a directory of your own with mode 0700"
            .to_string(),
    };
    Some(format!(
        "sandbox records: {}: {outcome}",
        l.problems.join("; ")
    ))
}

/// The directory, made if needed, refused unless it is a real directory of the
/// user's own that nobody else can enter (another user could otherwise plant or read
/// records).
pub(crate) fn ensure_dir(d: &Path, uid: u32) -> Result<()> {
    let step = "sandbox records";
    // Another sbx of this user removes the directory as its last record goes: when
    // that falls between our mkdir and our check, make it again.
    for _ in 0..8 {
        match std::fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::new(step, format!("mkdir {}: {e}", d.display()))),
        }
        match std::fs::symlink_metadata(d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            other => return check_meta(d, other, uid),
        }
    }
    Err(Error::new(
        step,
        format!("{}: removed again each time it was made", d.display()),
    ))
}

fn check_dir(d: &Path, uid: u32) -> Result<()> {
    check_meta(d, std::fs::symlink_metadata(d), uid)
}

fn check_meta(d: &Path, m: std::io::Result<std::fs::Metadata>, uid: u32) -> Result<()> {
    let m = m.map_err(|e| Error::new("sandbox records", format!("{}: {e}", d.display())))?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(Error::new(
            "sandbox records",
            format!(
                "{} is not a directory of yours with mode 0700: refusing to use it",
                d.display()
            ),
        ));
    }
    Ok(())
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn path_of(d: &Path, name: &str) -> PathBuf {
    d.join(format!("{name}.json"))
}

/// Field 22 of /proc/PID/stat: the start time, which tells a recycled pid apart.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The namespaces of `pid`, read again while its /proc/PID/ns is briefly unreadable
/// (during an execve).
pub fn ns_inodes_settled(pid: i32) -> BTreeMap<String, u64> {
    let mut ns = ns_inodes(&pid.to_string());
    for _ in 0..100 {
        if ns.len() == crate::namespace::made().count() {
            break;
        }
        std::thread::yield_now();
        ns = ns_inodes(&pid.to_string());
    }
    ns
}

pub fn ns_inodes(pid: &str) -> BTreeMap<String, u64> {
    crate::namespace::made()
        .filter_map(|r| {
            std::fs::metadata(format!("/proc/{pid}/ns/{}", r.proc_name))
                .ok()
                .map(|m| (r.proc_name.to_string(), m.ino()))
        })
        .collect()
}

/// Write `rec` as a new record; a live sandbox of that name is an error, a stale
/// record is replaced.
pub fn create(d: &Path, rec: &Record) -> Result<PathBuf> {
    let step = format!("--name {}", rec.name);
    for _ in 0..8 {
        ensure_dir(d, rec.uid)?;
        let path = path_of(d, &rec.name);
        // Written whole under a private name, then linked into place: a reader never
        // sees a partial record, and link(2) fails if the name exists (O_EXCL's rule).
        let tmp = d.join(format!(".{}.{}", rec.name, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(
                    serde_json::to_string(rec)
                        .expect("records serialise")
                        .as_bytes(),
                )
            });
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match load(&path).map(|r| verify(&r)) {
                    Some(Ok(_)) => {
                        return Err(Error::new(
                            step,
                            "a sandbox of that name is running (see sbx --list)",
                        )
                        .of_kind(crate::error::Kind::NameTaken))
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            // The directory went away between mkdir and open (another sbx removed it
            // as it ended): make it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::new(step, format!("{}: {e}", path.display()))),
        }
    }
    Err(Error::new(step, "could not create the record"))
}

/// Remove a record and, if it was the last, the directory.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(d) = path.parent() {
        let _ = std::fs::remove_dir(d);
    }
}

fn load(path: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// pidfds of a verified sandbox's PID 1 and of its command.
pub struct Handles {
    pub pid1: OwnedFd,
    pub anchor: OwnedFd,
}

/// Every record of live sandboxes; stale or forged ones are removed.
pub fn list(d: &Path, uid: u32) -> Result<Vec<(Record, Handles)>> {
    if std::fs::symlink_metadata(d).is_err() {
        return Ok(Vec::new());
    }
    check_dir(d, uid)?;
    let mut out = Vec::new();
    let all: Vec<PathBuf> = std::fs::read_dir(d)
        .map_err(|e| Error::new("sandbox records", format!("{}: {e}", d.display())))?
        .flatten()
        .map(|e| e.path())
        .collect();
    // A record being written is `.NAME.PID`: one whose writer is gone was left by an
    // sbx killed mid-write.
    for p in &all {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(p);
            }
        }
        // The D-Bus proxy's socket directory of an sbx that is gone.
        if let Some(pid) = name
            .strip_prefix("dbus-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(p);
            }
        }
    }
    let mut paths: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        match load(&p).map(|r| (verify(&r), r)) {
            Some((Ok(fd), r)) => out.push((r, fd)),
            // A process that exists and is not the sandbox (a forged record, or a
            // process caught mid-exec) is not listed, but only records whose sandbox
            // has certainly ended are removed.
            Some((Err(_), r)) if !ended(&r) => {}
            _ => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let _ = std::fs::remove_dir(d);
    Ok(out)
}

/// The live sandbox called `name`, verified, with a pidfd of its PID 1.
pub fn find(d: &Path, uid: u32, name: &str) -> Result<(Record, Handles)> {
    if !valid_name(name) {
        return Err(Error::new(
            name,
            "not a sandbox name (letters, digits, . _ -)",
        ));
    }
    if std::fs::symlink_metadata(d).is_ok() {
        check_dir(d, uid)?;
    }
    let path = path_of(d, name);
    let rec = load(&path).ok_or_else(|| {
        Error::new(
            name,
            format!("no sandbox of that name ({} has no record)", d.display()),
        )
    })?;
    match verify(&rec) {
        Ok(fd) => Ok((rec, fd)),
        Err(e) => Err(Error::new(name, format!("refusing its record: {e}"))),
    }
}

/// The recorded PID 1 is gone (or a zombie nobody has reaped yet), or its pid now
/// belongs to another process.
fn ended(rec: &Record) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{}/stat", rec.pid1))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    // A PID 1 that has let go of its memory is on its way out: it waits in the
    // kernel for the rest of its pid namespace to die (zap_pid_ns_processes) before
    // it becomes a zombie. A live one always shows sbx's arguments (it never execs).
    let exiting = std::fs::read(format!("/proc/{}/cmdline", rec.pid1)).is_ok_and(|c| c.is_empty());
    zombie || exiting || start_time(rec.pid1) != Some(rec.pid1_start)
}

fn status_field(pid: i32, key: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
        .unwrap_or_default()
}

/// The checks of the module comment; returns pidfds of PID 1 and the command.
pub fn verify(rec: &Record) -> std::result::Result<Handles, String> {
    let uid = sys::getuid();
    if rec.uid != uid || rec.version != 1 || !valid_name(&rec.name) {
        return Err("not a record of yours".into());
    }
    let fd = sys::pidfd_open(rec.pid1).map_err(|e| format!("pid {}: {e}", rec.pid1))?;
    if start_time(rec.pid1) != Some(rec.pid1_start) {
        return Err(format!("pid {} is another process now", rec.pid1));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", rec.pid1))
        .map_err(|e| format!("pid {}: {e}", rec.pid1))?;
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    if field("Uid:").first().map(|s| s.to_string()) != Some(uid.to_string()) {
        return Err(format!("pid {} is not yours", rec.pid1));
    }
    let nspid = field("NSpid:");
    if nspid.len() < 2 || nspid.last() != Some(&"1") {
        return Err(format!("pid {} is not the PID 1 of a sandbox", rec.pid1));
    }
    let anchor = sys::pidfd_open(rec.anchor).map_err(|e| format!("pid {}: {e}", rec.anchor))?;
    if start_time(rec.anchor) != Some(rec.anchor_start)
        || status_field(rec.anchor, "PPid:")
            .first()
            .map(String::as_str)
            != Some(rec.pid1.to_string().as_str())
    {
        return Err(format!("pid {} is not the sandbox's command", rec.anchor));
    }
    let now = ns_inodes_settled(rec.anchor);
    let host = ns_inodes("self");
    if now.is_empty() || now != rec.namespaces || now.get("user") == host.get("user") {
        return Err(format!(
            "pid {} is not in the recorded namespaces",
            rec.anchor
        ));
    }
    // Still the same processes after the checks (the pidfds pin them).
    for (f, pid) in [(&fd, rec.pid1), (&anchor, rec.anchor)] {
        if sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(f), 0).is_err() {
            return Err(format!("pid {pid} has exited"));
        }
    }
    Ok(Handles { pid1: fd, anchor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["web", "ci-1", "a.b_c", "x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn an_unusable_place_is_passed_over_never_followed() {
        let me = sys::geteuid();
        let base = std::env::temp_dir().join(format!("sbx-locate-{}", std::process::id()));
        let runtime = base.join("runtime");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&runtime)
            .unwrap();
        std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let l = locate(me, Some(&runtime));
        assert_eq!(l.dir, Some(runtime.join("sbx")));
        assert!(l.problems.is_empty());
        // A symlink where the directory should be (planted, or another user's).
        std::os::unix::fs::symlink("/etc", runtime.join("sbx")).unwrap();
        let l = locate(me, Some(&runtime));
        assert_ne!(l.dir, Some(runtime.join("sbx")));
        assert!(l.problems[0].contains("is a symlink"), "{:?}", l.problems);
        // A uid with no /run/user directory whose /tmp/sbx-UID is taken: no record,
        // and the notice says why and how to fix it.
        let uid = 3_999_000_000 + std::process::id() % 1000;
        let squat = PathBuf::from(format!("/tmp/sbx-{uid}"));
        let _ = std::fs::remove_file(&squat);
        std::os::unix::fs::symlink(&base, &squat).unwrap();
        let l = locate(uid, None);
        let _ = std::fs::remove_file(&squat);
        assert_eq!(l.dir, None);
        let n = problems_notice(&l).unwrap();
        assert!(n.contains(&format!("/tmp/sbx-{uid} is a symlink")), "{n}");
        assert!(
            n.contains("not recorded") && n.contains("XDG_RUNTIME_DIR"),
            "{n}"
        );
        // A relative XDG_RUNTIME_DIR is ignored.
        assert_ne!(
            locate(me, Some(Path::new("rel"))).dir,
            Some(PathBuf::from("rel/sbx"))
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}

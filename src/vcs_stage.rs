//! `--vcs commit`: the launcher's half of staging a git directory (the plan's half,
//! and why, is plan/vcs.rs).
//!
//! In the sandbox, the git directory's top level is a tmpfs holding copies of the
//! staged files (index, HEAD, ...), with objects, refs and logs bound writable over
//! it and everything else read-only: `git commit` writes objects and refs in place
//! and renames its new index over the copy, while a `commondir`, `config.worktree`,
//! hook directory or `rebase-merge/git-rebase-todo` (whose `exec` lines `git rebase
//! --continue` runs) it creates there never reaches the host. PID 1 passes the
//! launcher a descriptor of that tmpfs once the root is built; it outlives the
//! sandbox's mount namespace, and nothing of it is ever on the host's disk.
//!
//! After the run, each staged file the sandbox changed is checked and written back
//! the way git writes it (`NAME.lock`, created exclusively, then renamed: a git
//! running on the host meanwhile holds the lock and wins), unless the host's copy
//! changed during the run; the index is rewritten by [`crate::gitindex::sanitize`];
//! `refs/replace`, which silently changes what `git log` and `git diff` show, is put
//! back as it was; what else the sandbox added is named and discarded.

pub mod sha1;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::plan::vcs::STAGED_FILES;
use crate::plan::{Access, MountOp, Plan};
use crate::sys;

/// The largest staged file read (git's index of a very large tree is far smaller).
const MAX_FILE: u64 = crate::plan::vcs::MAX_STAGED;
/// Bounds on the walk of `refs/replace`.
const MAX_REPLACE: usize = 4096;

/// A git directory staged for one run.
pub struct Stage {
    gitdir: PathBuf,
    real: OwnedFd,
    /// The staged files as they were when the plan was made.
    before: BTreeMap<&'static str, Vec<u8>>,
    /// The names of the git directory's top level then.
    names: BTreeSet<OsString>,
    /// `refs/replace`, relative name to content (a symlink: "-> target").
    replace: BTreeMap<PathBuf, Vec<u8>>,
}

/// The staging tmpfs of each staged git directory, in the plan's order, as PID 1
/// passed them (the launcher's wait hands them here; the run's end takes them).
static RECEIVED: std::sync::Mutex<Vec<OwnedFd>> = std::sync::Mutex::new(Vec::new());

/// Keep a staging directory PID 1 passed.
pub fn received(fd: OwnedFd) {
    RECEIVED.lock().unwrap_or_else(|e| e.into_inner()).push(fd);
}

fn c(name: &std::ffi::OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// A regular file `name` in `dir`, opened without following a symlink or blocking
/// on a FIFO; None: absent, not a regular file, or larger than `max`.
fn read_at(dir: BorrowedFd, name: &std::ffi::OsStr, max: u64) -> Option<Vec<u8>> {
    let fd = sys::openat(
        dir,
        &c(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    )
    .ok()?;
    let st = sys::fstat(fd.as_fd()).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > max {
        return None;
    }
    let mut out = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= max).then_some(out)
}

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    sys::open_no_symlinks(&c(path.as_os_str()), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| e.to_string())
}

/// Before the launch: open each staged git directory and note its `refs/replace`.
/// One that cannot be opened is made read-only in the plan instead (said in the
/// returned notices): never writable without the checks after the run.
pub fn begin(plan: &mut Plan) -> (Vec<Stage>, Vec<String>) {
    let mut stages = Vec::new();
    let mut notices = Vec::new();
    RECEIVED.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let mut kept = Vec::new();
    for s in std::mem::take(&mut plan.git_staged) {
        match open_dir(&s.gitdir) {
            Ok(real) => {
                stages.push(Stage {
                    gitdir: s.gitdir.clone(),
                    real,
                    before: s.before.iter().cloned().collect(),
                    names: s.names.iter().cloned().collect(),
                    replace: walk_replace(&s.gitdir),
                });
                kept.push(s);
            }
            Err(why) => {
                for m in plan.mounts.iter_mut() {
                    if let MountOp::Bind { dst, access, .. } = &mut m.op {
                        if dst.starts_with(&s.dst) {
                            *access = Access::ReadOnly;
                        }
                    }
                }
                notices.push(format!(
                    "--vcs commit: cannot open {} ({why}): it is read-only in this run",
                    s.gitdir.display()
                ));
            }
        }
    }
    plan.git_staged = kept;
    (stages, notices)
}

/// `refs/replace` as it is now: relative path to content, following no symlink.
fn walk_replace(gitdir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let root = gitdir.join("refs/replace");
    let mut out = BTreeMap::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let Ok(fd) = open_dir(&root.join(&rel)) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            if out.len() + dirs.len() >= MAX_REPLACE {
                return out;
            }
            let name = e.file_name();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                dirs.push(rel.join(&name));
            } else if kind.is_symlink() {
                let mut v = b"-> ".to_vec();
                v.extend(sys::readlinkat(fd.as_fd(), &c(&name)).unwrap_or_default());
                out.insert(rel.join(&name), v);
            } else {
                let data = read_at(fd.as_fd(), &name, 4096).unwrap_or_default();
                out.insert(rel.join(&name), data);
            }
        }
    }
    out
}

/// Whether `b` is one line holding an object id (40 hex digits) and nothing else.
fn is_oid_line(b: &[u8]) -> bool {
    b.len() == 41 && b[40] == b'\n' && b[..40].iter().all(u8::is_ascii_hexdigit)
}

/// A ref name as git writes it in HEAD: `refs/` then printable ASCII without the
/// characters check-ref-format refuses.
fn is_ref_name(b: &[u8]) -> bool {
    b.starts_with(b"refs/")
        && !b.windows(2).any(|w| w == b"..")
        && b.iter()
            .all(|c| c.is_ascii_graphic() && !b" ~^:?*[\\".contains(c))
}

/// The staged file `name` as the sandbox left it, checked and made safe; Err: why it
/// is not written back.
fn checked(name: &str, old: Option<&[u8]>, new: Vec<u8>) -> Result<Vec<u8>, String> {
    let lines = || new.split_inclusive(|c| *c == b'\n');
    let ok = match name {
        "index" => return crate::gitindex::sanitize(old, &new),
        "HEAD" => {
            is_oid_line(&new)
                || new
                    .strip_prefix(b"ref: ")
                    .and_then(|r| r.strip_suffix(b"\n"))
                    .is_some_and(is_ref_name)
        }
        "ORIG_HEAD" => is_oid_line(&new),
        "FETCH_HEAD" => lines().all(|l| l.len() > 41 && l[..40].iter().all(u8::is_ascii_hexdigit)),
        "packed-refs" => {
            let had: BTreeSet<&[u8]> = old
                .unwrap_or_default()
                .split_inclusive(|c| *c == b'\n')
                .collect();
            lines().all(|l| {
                let refname = l.get(41..).unwrap_or_default();
                l.starts_with(b"#")
                    || (l.starts_with(b"^") && l.len() == 42 && is_oid_line(&l[1..]))
                    || (l.len() > 41
                        && l[..40].iter().all(u8::is_ascii_hexdigit)
                        && l[40] == b' '
                        && is_ref_name(refname.strip_suffix(b"\n").unwrap_or(refname))
                        && (!refname.starts_with(b"refs/replace/") || had.contains(l)))
            })
        }
        _ => true, // COMMIT_EDITMSG: a message
    };
    if ok {
        Ok(new)
    } else {
        Err("not in the format git writes (or a new refs/replace entry)".into())
    }
}

/// Write `data` as `name` in `dir` the way git does, if the host's file is still
/// `expected` (None: absent). Err: why not.
fn write_back(
    dir: BorrowedFd,
    name: &str,
    expected: Option<&[u8]>,
    data: &[u8],
) -> Result<(), String> {
    let lock = CString::new(format!("{name}.lock")).expect("no NUL");
    let fd = sys::create_file_with(dir, &lock, 0o644).map_err(|e| {
        if e.errno == libc::EEXIST {
            format!("git is running on the host ({name}.lock exists)")
        } else {
            e.to_string()
        }
    })?;
    let unlock = || {
        // SAFETY: valid fd and C string.
        unsafe { libc::unlinkat(dir.as_raw_fd(), lock.as_ptr(), 0) };
    };
    if read_at(dir, std::ffi::OsStr::new(name), MAX_FILE).as_deref() != expected {
        unlock();
        return Err("it changed on the host during the run; the host's is kept".into());
    }
    let mut f = std::fs::File::from(fd);
    if let Err(e) = f.write_all(data).and_then(|()| f.sync_data()) {
        unlock();
        return Err(e.to_string());
    }
    let to = CString::new(name).expect("no NUL");
    // SAFETY: valid fd and C strings.
    if unsafe { libc::renameat(dir.as_raw_fd(), lock.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } != 0
    {
        let e = sys::errno();
        unlock();
        return Err(format!("renameat({name}.lock, {name}): errno {e}"));
    }
    Ok(())
}

/// The names in directory `dir` (at most 4096).
fn names_in(dir: BorrowedFd) -> Vec<OsString> {
    let Ok(fd) = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY) else {
        return Vec::new();
    };
    std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|rd| rd.flatten().take(4096).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// After the run: write back what may be, restore `refs/replace`. Returns warnings
/// to print.
pub fn finish(stages: Vec<Stage>) -> Vec<String> {
    let mut out = Vec::new();
    let received = std::mem::take(&mut *RECEIVED.lock().unwrap_or_else(|e| e.into_inner()));
    for (s, staging) in stages.into_iter().zip(received) {
        let shown = s.gitdir.display().to_string();
        // packed-refs before the index and HEAD: a ref `pack-refs` moved there
        // exists before anything points at it.
        for name in [
            "packed-refs",
            "index",
            "HEAD",
            "ORIG_HEAD",
            "COMMIT_EDITMSG",
            "FETCH_HEAD",
        ] {
            let old = s.before.get(name).map(Vec::as_slice);
            let Some(new) = read_at(staging.as_fd(), std::ffi::OsStr::new(name), MAX_FILE) else {
                continue;
            };
            if Some(new.as_slice()) == old {
                continue;
            }
            let done = checked(name, old, new)
                .and_then(|data| write_back(s.real.as_fd(), name, old, &data));
            if let Err(why) = done {
                out.push(format!(
                    "--vcs commit: {shown}/{name} from the sandbox was not kept: {why}"
                ));
            }
        }
        // refs/replace as it was.
        let now = walk_replace(&s.gitdir);
        let root = s.gitdir.join("refs/replace");
        for (rel, data) in &now {
            if s.replace.get(rel) == Some(data) {
                continue;
            }
            let p = root.join(rel);
            let _ = std::fs::remove_file(&p);
            if let Some(old) = s.replace.get(rel).filter(|o| !o.starts_with(b"-> ")) {
                let _ = std::fs::write(&p, old);
            }
            out.push(format!(
                "--vcs commit: removed {} the sandbox wrote (replace refs change what git log and \
                 git diff show)",
                p.display()
            ));
        }
        for (rel, data) in &s.replace {
            if !now.contains_key(rel) && !data.starts_with(b"-> ") {
                let _ = std::fs::write(root.join(rel), data);
            }
        }
        // What the sandbox added to the top level, discarded.
        let added: Vec<String> = names_in(staging.as_fd())
            .into_iter()
            .filter(|n| {
                !s.names.contains(n) && !STAGED_FILES.iter().any(|f| n.as_bytes() == f.as_bytes())
            })
            .filter(|n| !n.as_bytes().ends_with(b".lock"))
            .map(|n| String::from_utf8_lossy(&n.into_vec()).into_owned())
            .collect();
        if !added.is_empty() {
            out.push(format!(
                "--vcs commit: discarded what the sandbox added to {shown}: {}",
                added.join(", ")
            ));
        }
    }
    out
}

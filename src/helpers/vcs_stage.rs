//! `--vcs commit`: the launcher's half of staging a git directory (the plan's half,
//! and why, is plan/vcs.rs).
//!
//! In the sandbox, the git directory's top level is a tmpfs holding copies of the
//! staged files (index, HEAD, ...) and of the loose refs, reflogs that start empty
//! (the stash's copied), the host's objects read-only (an alternate of the tmpfs's
//! own `objects`) and everything else read-only: `git commit` writes new objects,
//! refs and reflog lines to the tmpfs and renames its new index over the copy,
//! while a `commondir`, `config.worktree`, hook directory or
//! `rebase-merge/git-rebase-todo` (whose `exec` lines `git rebase --continue` runs)
//! it creates there never reaches the host. Nothing of the host's git directory is
//! writable during the run: a git running on the host meanwhile sees none of the
//! sandbox's moment-to-moment state. PID 1 passes the launcher a descriptor of that
//! tmpfs once the root is built; it outlives the sandbox's mount namespace, and
//! nothing of it is ever on the host's disk.
//!
//! After the run, when anything changed, the host's own git decides what lands
//! ([`hostgit`]): the new objects the moved refs and the new index need are fetched
//! with `transfer.fsckObjects` (git parses each, fsck checks every tree and
//! `.gitmodules`, the history must be complete: a failing pack is dropped whole);
//! each moved ref is moved by `git update-ref` with its old value (a ref the host
//! moved meanwhile stays the host's; `refs/replace` never lands); then the index
//! (rewritten by [`crate::gitindex::sanitize`], every object it names present) and
//! HEAD are written back the way git writes them (`NAME.lock`, created exclusively,
//! then renamed), each only if the host's copy did not change. What else the
//! sandbox added is named and discarded.

mod hostgit;
mod loose;
pub mod objects;
mod refs;
pub mod sha1;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::plan::vcs::STAGED_FILES;
use crate::plan::{Access, MountOp, Plan};
use crate::sys;

/// The largest staged file read (git's index of a very large tree is far smaller).
const MAX_FILE: u64 = crate::plan::vcs::MAX_STAGED;

/// A git directory staged for one run.
pub struct Stage {
    git: PathBuf,
    gitdir: PathBuf,
    real: OwnedFd,
    /// The staged files as they were when the plan was made.
    before: BTreeMap<&'static str, Vec<u8>>,
    /// The names of the git directory's top level then.
    names: BTreeSet<OsString>,
    /// The loose refs copied in (path under `refs/`).
    refs: BTreeMap<PathBuf, Vec<u8>>,
}

/// A regular file `name` in `dir`, opened without following a symlink or blocking
/// on a FIFO; None: absent, not a regular file, or larger than `max`.
fn read_at(dir: BorrowedFd, name: &std::ffi::OsStr, max: u64) -> Option<Vec<u8>> {
    read_regular(dir, name, max, false)
}

/// [`read_at`], and with `single`, only a file of one link (git never hard-links in
/// a git directory: a file linked many times would be read many times).
fn read_regular(
    dir: BorrowedFd,
    name: &std::ffi::OsStr,
    max: u64,
    single: bool,
) -> Option<Vec<u8>> {
    let fd = sys::openat(
        dir,
        &sys::cstr(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    )
    .ok()?;
    let st = sys::fstat(fd.as_fd()).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG
        || (single && st.st_nlink != 1)
        || st.st_size as u64 > max
    {
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
    sys::open_no_symlinks(
        &sys::cstr(path.as_os_str()),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
    .map_err(|e| e.to_string())
}

/// Before the launch: open each staged git directory.
/// One that cannot be opened is made read-only in the plan instead (said in the
/// returned notices): never writable without the checks after the run.
pub fn begin(plan: &mut Plan) -> (Vec<Stage>, Vec<String>) {
    let mut stages = Vec::new();
    let mut notices = Vec::new();
    let mut kept = Vec::new();
    for s in std::mem::take(&mut plan.git_staged) {
        match open_dir(&s.gitdir) {
            Ok(real) => {
                stages.push(Stage {
                    git: s.git.clone(),
                    gitdir: s.gitdir.clone(),
                    real,
                    before: s.before.iter().cloned().collect(),
                    names: s.names.iter().cloned().collect(),
                    refs: s.refs.iter().cloned().collect(),
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

/// Whether `b` is one line holding an object id (40 hex digits) and nothing else.
fn is_oid_line(b: &[u8]) -> bool {
    b.len() == 41 && b[40] == b'\n' && b[..40].iter().all(u8::is_ascii_hexdigit)
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
        let _ = sys::unlinkat(dir, &lock);
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
    if let Err(e) = sys::renameat(dir, &lock, &to) {
        unlock();
        return Err(e.to_string());
    }
    Ok(())
}

/// The names in directory `dir` (at most `max`).
fn names_in(dir: BorrowedFd, max: usize) -> Vec<OsString> {
    let Ok(fd) = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY) else {
        return Vec::new();
    };
    std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|rd| rd.flatten().take(max).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Join `items` for a message, the first `n` of them.
fn listed(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s += &format!(" and {} more", items.len() - n);
    }
    s
}

/// What the end of a staged run says: the moves (notices, quiet with -q) and what
/// was not kept and why (warnings).
#[derive(Default)]
pub struct Report {
    pub notices: Vec<String>,
    pub warnings: Vec<String>,
}

/// After the run: hand what changed to the host's git, then write back what may
/// be. `received`: each stage's tmpfs, as PID 1 passed them (in the plan's order).
pub fn finish(stages: Vec<Stage>, received: Vec<OwnedFd>) -> Report {
    let mut report = Report::default();
    for (s, staging) in stages.into_iter().zip(received) {
        finish_one(&s, staging.as_fd(), &mut report);
        report.warnings.extend(discarded(&s, staging.as_fd()));
    }
    report
}

/// A staged file as the sandbox left it, if it differs from the launch's copy.
fn changed(s: &Stage, staging: BorrowedFd, name: &str) -> Option<Vec<u8>> {
    let new = read_at(staging, OsStr::new(name), MAX_FILE)?;
    (s.before.get(name) != Some(&new)).then_some(new)
}

/// Whether the loose refs under `staging`'s refs are the ones copied in (stops at
/// the first difference).
fn refs_unchanged(s: &Stage, staging: BorrowedFd) -> bool {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let Ok(root) = sys::openat(staging, c"refs", flags) else {
        return false;
    };
    let mut seen = 0;
    let mut todo = vec![(PathBuf::new(), root)];
    while let Some((rel, dir)) = todo.pop() {
        for name in names_in(dir.as_fd(), s.refs.len() + 2) {
            let path = rel.join(&name);
            if let Ok(sub) = sys::openat(dir.as_fd(), &sys::cstr(&name), flags) {
                todo.push((path, sub));
                continue;
            }
            seen += 1;
            let Some(old) = s.refs.get(&path) else {
                return false;
            };
            if read_at(dir.as_fd(), &name, old.len() as u64 + 1).as_ref() != Some(old) {
                return false;
            }
        }
    }
    seen == s.refs.len()
}

/// The most ref moves one run may bring back: more is not a day's work in a
/// repository, and each costs the host's git a process.
const MAX_MOVES: usize = 1000;

/// How long the host's git may work on one run's changes, in all.
const GIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

fn finish_one(s: &Stage, staging: BorrowedFd, report: &mut Report) {
    let shown = s.gitdir.display().to_string();
    let (index, head) = (changed(s, staging, "index"), changed(s, staging, "HEAD"));
    let packed = changed(s, staging, "packed-refs");
    if let Some(msg) = changed(s, staging, "COMMIT_EDITMSG").filter(|m| m.len() <= 1 << 20) {
        let old = s.before.get("COMMIT_EDITMSG").map(Vec::as_slice);
        let _ = write_back(s.real.as_fd(), "COMMIT_EDITMSG", old, &msg);
    }
    if index.is_none() && head.is_none() && packed.is_none() && refs_unchanged(s, staging) {
        return; // nothing for git to look at
    }
    let warn = |report: &mut Report, what: &str, why: &str| {
        report.warnings.push(format!(
            "--vcs commit: {what} from the sandbox not kept in {shown}: {why}"
        ))
    };
    let git = hostgit::Git {
        git: &s.git,
        gitdir: &s.gitdir,
        deadline: std::time::Instant::now() + GIT_BUDGET,
    };
    let export = match hostgit::export(staging, s.real.as_fd(), &s.gitdir) {
        Ok(e) => e,
        Err(why) => return warn(report, "anything", &why),
    };
    let after = match hostgit::refs_of(&git, &export) {
        Ok(r) => r,
        Err(why) => {
            return warn(
                report,
                "anything",
                &format!("git cannot read its refs: {why}"),
            )
        }
    };
    let before = refs::snapshot(&s.refs, s.before.get("packed-refs").map(Vec::as_slice));
    let (moves, mut refused) = allowed_moves(s, refs::moves(&before, &after));
    let new_index = index
        .as_deref()
        .and_then(|b| crate::gitindex::parse(b, 20))
        .map(|i| i.entries)
        .unwrap_or_default();
    let blobs = new_blobs(s, &new_index);
    let head_oid = head
        .as_deref()
        .filter(|h| is_oid_line(h))
        .map(|h| String::from_utf8_lossy(&h[..40]).into_owned());
    let fetched = fetch_all(&git, &export, moves, head_oid.as_deref(), &blobs);
    drop(export);
    refused.extend(fetched.refused);
    let mut moved = refs::apply(&git, &fetched.moves, |name| last_message(staging, name));
    refused.append(&mut moved.refused);
    if !moved.made.is_empty() {
        report
            .notices
            .push(format!("git in {shown}: {}", listed(&moved.made, 8)));
    }
    if !refused.is_empty() {
        warn(report, "ref moves", &listed(&refused, 5));
    }
    if let Some(new) = index {
        let done = fetched
            .index
            .and_then(|()| blobs_are_blobs(&git, &blobs))
            .and_then(|()| {
                let old = s.before.get("index").map(Vec::as_slice);
                crate::gitindex::sanitize(old, &new)
                    .and_then(|data| write_back(s.real.as_fd(), "index", old, &data))
            });
        if let Err(why) = done {
            warn(report, "the index", &why);
        }
    }
    if let Some(new) = head {
        if let Err(why) = fetched.head.and_then(|()| write_head(s, &git, &new)) {
            warn(report, "HEAD", &why);
        }
    }
}

/// The moves that may be made: at most [`MAX_MOVES`]; never a replace ref or a note
/// (each changes what `git log` shows for commits it does not touch); never the
/// branch a linked worktree has checked out (git branch -f and -d refuse it too);
/// the main worktree's moved (a commit does) but not deleted. Returns them and the
/// refusals.
fn allowed_moves(s: &Stage, moves: Vec<refs::Move>) -> (Vec<refs::Move>, Vec<String>) {
    if moves.len() > MAX_MOVES {
        return (
            Vec::new(),
            vec![format!(
                "{} refs moved, more than sbx brings back ({MAX_MOVES}): none kept",
                moves.len()
            )],
        );
    }
    let main = checked_out(s.real.as_fd());
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let others: Vec<String> = sys::openat(s.real.as_fd(), c"worktrees", flags)
        .map(|wt| {
            names_in(wt.as_fd(), 256)
                .into_iter()
                .filter_map(|n| {
                    checked_out(sys::openat(wt.as_fd(), &sys::cstr(&n), flags).ok()?.as_fd())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut refused = Vec::new();
    let kept = moves
        .into_iter()
        .filter(|m| {
            let why = if m.name.starts_with("refs/replace/") || m.name.starts_with("refs/notes/") {
                Some("replace refs and notes change what git log shows")
            } else if others.contains(&m.name) {
                Some("a linked worktree has it checked out")
            } else if m.new.is_none() && main.as_deref() == Some(m.name.as_str()) {
                Some("the host's HEAD is on it; it is not deleted")
            } else {
                None
            };
            if let Some(why) = why {
                refused.push(format!("{}: {why}", m.name));
            }
            why.is_none()
        })
        .collect();
    (kept, refused)
}

/// The branch the HEAD file in `dir` names (`ref: refs/heads/…`), if any.
fn checked_out(dir: BorrowedFd) -> Option<String> {
    let h = read_at(dir, OsStr::new("HEAD"), 4096)?;
    Some(
        String::from_utf8_lossy(h.strip_prefix(b"ref: ")?)
            .trim_end()
            .to_string(),
    )
}

/// The objects of the index's new entries (gitlinks aside: their commits are the
/// submodule's).
fn new_blobs(s: &Stage, new_index: &[crate::gitindex::Entry]) -> Vec<String> {
    let old: BTreeSet<Vec<u8>> = s
        .before
        .get("index")
        .and_then(|b| crate::gitindex::parse(b, 20))
        .map(|i| i.entries.into_iter().map(|e| e.oid).collect())
        .unwrap_or_default();
    let mut blobs: Vec<String> = new_index
        .iter()
        .filter(|e| e.mode() != 0o160000 && !old.contains(&e.oid))
        .map(|e| e.oid.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    blobs.sort();
    blobs.dedup();
    blobs
}

/// What the fetches brought: the moves whose objects came, the refusals, and
/// whether HEAD's and the index's objects came.
struct Fetched {
    moves: Vec<refs::Move>,
    refused: Vec<String>,
    head: Result<(), String>,
    index: Result<(), String>,
}

/// Fetch everything wanted at once; if git refuses, a few moves are tried one by
/// one (so that one bad ref keeps only itself out), many are all refused.
fn fetch_all(
    git: &hostgit::Git,
    export: &hostgit::Export,
    moves: Vec<refs::Move>,
    head: Option<&str>,
    blobs: &[String],
) -> Fetched {
    let mut wants: Vec<String> = moves.iter().filter_map(|m| m.new.clone()).collect();
    wants.extend(head.map(str::to_string));
    wants.extend(blobs.iter().cloned());
    wants.sort();
    wants.dedup();
    if hostgit::fetch(git, export, &wants).is_ok() {
        return Fetched {
            moves,
            refused: Vec::new(),
            head: Ok(()),
            index: Ok(()),
        };
    }
    let one = |wants: &[String]| {
        hostgit::fetch(git, export, wants).map_err(|w| format!("git refused its objects: {w}"))
    };
    let mut refused = Vec::new();
    let kept = if moves.len() <= 16 {
        moves
            .into_iter()
            .filter(
                |m| match m.new.as_ref().map(|n| one(std::slice::from_ref(n))) {
                    Some(Err(why)) => {
                        refused.push(format!("{}: {why}", m.name));
                        false
                    }
                    _ => true,
                },
            )
            .collect()
    } else {
        refused.push(format!(
            "{} refs: git refused the objects they need",
            moves.len()
        ));
        Vec::new()
    };
    Fetched {
        moves: kept,
        refused,
        head: head.map_or(Ok(()), |h| one(&[h.to_string()])),
        index: one(blobs),
    }
}

/// Every object a new index entry names is a blob (a tree or a commit there would
/// have the host's `git status` write broken trees).
fn blobs_are_blobs(git: &hostgit::Git, blobs: &[String]) -> Result<(), String> {
    if blobs.is_empty() {
        return Ok(());
    }
    let out = git.run(
        &[OsStr::new("cat-file"), OsStr::new("--batch-check")],
        (blobs.join("\n") + "\n").as_bytes(),
    )?;
    match String::from_utf8_lossy(&out)
        .lines()
        .find(|l| l.split(' ').nth(1) != Some("blob"))
    {
        Some(l) => Err(format!("an entry names {l}, not a file's content")),
        None => Ok(()),
    }
}

/// The message of the last line of `name`'s reflog in the staging directory (what
/// the sandbox's git said it did: `commit: fix`, a stash's `WIP on main`), made
/// printable, for the host's reflog; a fixed one where there is none.
fn last_message(staging: BorrowedFd, name: &str) -> String {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let dir = Path::new("logs").join(name);
    let text = dir
        .parent()
        .and_then(|parent| {
            parent
                .components()
                .try_fold(sys::openat(staging, c".", flags).ok()?, |fd, c| {
                    sys::openat(fd.as_fd(), &sys::cstr(c.as_os_str()), flags).ok()
                })
        })
        .and_then(|fd| read_at(fd.as_fd(), dir.file_name()?, 1 << 20));
    let line = text
        .as_deref()
        .and_then(|t| t.trim_ascii_end().rsplit(|c| *c == b'\n').next())
        .and_then(|l| l.splitn(2, |c| *c == b'\t').nth(1))
        .map(|m| {
            String::from_utf8_lossy(m)
                .chars()
                .filter(|c| !c.is_control() && !invisible(*c))
                .take(200)
                .collect::<String>()
        });
    match line {
        Some(m) if !m.trim().is_empty() => m,
        _ => "sbx --vcs commit: moved in the sandbox".into(),
    }
}

/// Characters that change how text around them shows without showing themselves
/// (bidirectional overrides and isolates, zero-width ones): not passed into the
/// host's reflog.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// HEAD as the sandbox left it, made by git (a branch by `symbolic-ref`, a commit
/// by `update-ref --no-deref`), if the host's HEAD is still the launch's.
fn write_head(s: &Stage, git: &hostgit::Git, new: &[u8]) -> Result<(), String> {
    let old = s.before.get("HEAD").map(Vec::as_slice);
    if read_at(s.real.as_fd(), OsStr::new("HEAD"), 4096).as_deref() != old {
        return Err("it changed on the host during the run; the host's is kept".into());
    }
    let text = String::from_utf8_lossy(new);
    let args: Vec<&str> = if let Some(target) = text.strip_prefix("ref: ") {
        let target = target.trim_end();
        // A branch, as git checkout makes it: HEAD on a tag or a remote-tracking
        // ref would have the user's next commit move it.
        if !target.starts_with("refs/heads/") {
            return Err(format!("HEAD names {target:?}, not a branch"));
        }
        vec![
            "symbolic-ref",
            "-m",
            "sbx --vcs commit",
            "--",
            "HEAD",
            target,
        ]
    } else if is_oid_line(new) {
        vec![
            "update-ref",
            "--no-deref",
            "-m",
            "sbx --vcs commit",
            "HEAD",
            text.trim_end(),
        ]
    } else {
        return Err("not in the format git writes".into());
    };
    let args: Vec<&OsStr> = args.into_iter().map(OsStr::new).collect();
    git.run(&args, b"").map(drop)
}

/// What the sandbox added to the git directory's top level, discarded.
fn discarded(s: &Stage, staging: BorrowedFd) -> Option<String> {
    let added: Vec<String> = names_in(staging, 4096)
        .into_iter()
        .filter(|n| {
            !s.names.contains(n)
                && !STAGED_FILES.iter().any(|f| n.as_bytes() == f.as_bytes())
                && n.as_bytes() != crate::plan::vcs::HOST_OBJECTS.as_bytes()
        })
        .filter(|n| !n.as_bytes().ends_with(b".lock"))
        .map(|n| String::from_utf8_lossy(&n.into_vec()).into_owned())
        .collect();
    (!added.is_empty()).then(|| {
        format!(
            "--vcs commit: discarded what the sandbox added to {}: {}",
            s.gitdir.display(),
            added.join(", ")
        )
    })
}

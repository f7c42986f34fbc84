//! Version-control metadata that the host's tools execute, kept read-only inside
//! writable directories. A sandbox that can write `.git/config` sets
//! `core.fsmonitor`, `core.pager` or a filter driver; one that can write
//! `.git/hooks/*` plants a hook: the user's next plain `git status` (or a shell
//! prompt that runs it) executes it on the host, outside any sandbox. So, by
//! default, inside every writable bind (OpenAI Codex's Linux sandbox makes the same
//! choice for a workspace's `.git`):
//!
//! - a repository's git directory is bound read-only over itself, all of it: config,
//!   hooks, info, modules, worktrees, and the files git would honour if created there
//!   (`commondir` redirects where config is read, `config.worktree`); no name-by-name
//!   list can cover files that do not exist yet;
//! - a `.git` *file* (a worktree's or submodule's `gitdir:` pointer) is bound
//!   read-only, and the git directory it names when that lies in a writable bind;
//! - every submodule and linked worktree the git directory records is protected the
//!   same way: submodules from the index's gitlinks (the index is in the read-only
//!   git directory, so a sandbox cannot hide one by editing `.gitmodules`) and from
//!   `modules/` (names may hold `/`), linked worktrees from `worktrees/*/gitdir`;
//! - each directory on the way from the writable bind's root to a protected entry
//!   is made a mount point (bound over itself, with whatever was mounted there bound
//!   again after it): a mount point cannot be renamed, so no parent can be moved
//!   away and replaced by one holding a planted `.git`;
//! - Mercurial's `.hg/` (hgrc hooks and extensions) likewise;
//! - a `.git` or `.hg` that is a symlink cannot be kept read-only (the link itself
//!   can be replaced): the launch is refused, naming it.
//!
//! Every file read here is opened without following a symlink and must be a
//! regular file (a planted FIFO must not hang the launch); the walk is bounded.
//!
//! `--vcs commit` (the `dev` profile's `vcs = "commit"`) keeps all of that except for
//! a repository's own `.git` directory, which is *staged* so that `git commit` works:
//! its top level is a private copy (a directory can only be bound whole, and git
//! writes `index` and `HEAD` by creating `NAME.lock` and renaming it, so the top
//! level must take new names; a name the sandbox adds there, `commondir`,
//! `config.worktree`, `rebase-merge/git-rebase-todo` with `exec` lines, never reaches
//! the host), with `refs` and `logs` bound writable, the host's objects read-only
//! and new ones written to the tmpfs, everything else read-only; after the run the
//! launcher adds the new objects that are what their names say and writes the
//! staged files back after checks (crate::vcs_stage). A linked worktree's or a
//! submodule's git directory stays read-only. `--vcs writable` (or `--vcs-writable`)
//! opts out of all of it. Not covered: a repository the sandbox *creates* where
//! none was (git runs its config only when used inside that directory; the launcher
//! names each one a writable directory gained, eight levels deep, see
//! [`new_repositories`]); direnv's `.envrc` and editor
//! workspace settings are guarded by their own tools (`direnv allow` hashes,
//! workspace trust).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Access, Mount, MountOp};
use crate::error::{Error, Result};
use crate::host::{Entry, HostFs};
use crate::profile::schema::VcsMode;

/// Bounds on the walk: worktrees visited, directories under `modules/` read, and the
/// largest index read (a bigger one is not searched for gitlinks).
const MAX_WORKTREES: usize = 256;
const MAX_MODULE_DIRS: usize = 1024;
const MAX_INDEX: u64 = 256 << 20;

/// The writable directory binds: (host source, sandbox destination).
fn writable_dirs(mounts: &[Mount], fs: &dyn HostFs) -> Vec<(PathBuf, PathBuf)> {
    mounts
        .iter()
        .filter_map(|m| match &m.op {
            MountOp::Bind {
                src,
                dst,
                access: Access::ReadWrite | Access::Device,
            } if fs.entry(src) == Entry::Dir => Some((src.clone(), dst.clone())),
            _ => None,
        })
        .collect()
}

/// Where host path `host` is seen inside through the writable binds (the last
/// covering bind wins), with that bind's source.
fn inside(binds: &[(PathBuf, PathBuf)], host: &Path) -> Option<(PathBuf, PathBuf)> {
    binds.iter().rev().find_map(|(src, dst)| {
        host.strip_prefix(src)
            .ok()
            .map(|rest| (src.clone(), dst.join(rest)))
    })
}

fn text(fs: &dyn HostFs, p: &Path) -> Option<String> {
    String::from_utf8(fs.read_small(p)?).ok()
}

/// `gitdir: X` of a `.git` file, resolved against the file's directory.
fn gitdir_of(fs: &dyn HostFs, file: &Path) -> Option<PathBuf> {
    let t = text(fs, file)?;
    let target = t.lines().next()?.strip_prefix("gitdir:")?.trim();
    fs.canonicalize(&super::lexical_abs(target.as_ref(), file.parent()))
        .ok()
}

/// The value of `key` in git config text (first match, any section: good enough for
/// `core.worktree`, which only [core] carries).
fn config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config.lines().map(str::trim).find_map(|l| {
        let rest = l.strip_prefix(key)?.trim_start();
        Some(rest.strip_prefix('=')?.trim().trim_matches('"'))
    })
}

/// The work tree of a submodule's git directory (absorbed in `modules/NAME`).
fn worktree_of(fs: &dyn HostFs, gitdir: &Path) -> Option<PathBuf> {
    let config = text(fs, &gitdir.join("config"))?;
    let wt = config_value(&config, "worktree")?;
    fs.canonicalize(&super::lexical_abs(wt.as_ref(), Some(gitdir)))
        .ok()
}

/// What to protect: read-only entries (true: a git directory to stage for
/// `--vcs commit`) and the directories to make mount points.
#[derive(Default)]
struct Found {
    read_only: std::collections::BTreeMap<PathBuf, bool>,
    mount_points: BTreeSet<PathBuf>,
}

/// Top-level files of a git directory that `git commit` (and `add`, `reset`,
/// `pack-refs`) rewrites by lock file and rename, so they cannot be bound in place:
/// copied into the staging directory at the launch and back after the run, each
/// checked first (`crate::vcs_stage`). All are data git reads, none a program or a
/// setting it runs.
pub const STAGED_FILES: [&str; 6] = [
    "index",
    "HEAD",
    "ORIG_HEAD",
    "COMMIT_EDITMSG",
    "packed-refs",
    "FETCH_HEAD",
];

/// How many loose refs (and directories of them) a staged git directory may hold:
/// they are copied at every launch. A repository with more stays read-only (said).
pub const MAX_REFS: usize = 16384;
/// The largest loose ref file copied (a ref is one line).
const MAX_REF_FILE: u64 = 4096;
/// The reflogs copied at the launch: only the stash's, whose entries are the stash
/// list (`git stash drop` rewrites it). Other reflogs start empty inside; the lines
/// the sandbox adds are appended to the host's after the run.
pub const COPIED_LOGS: [&str; 1] = ["refs/stash"];
const MAX_COPIED_LOG: u64 = 1 << 20;

/// Where, in a staged git directory, the host's objects are bound read-only. The
/// staged `objects` is a directory of the tmpfs whose `info/alternates` names it:
/// git reads every object the host has and writes new ones to the tmpfs, and the
/// launcher adds to the host's repository only those whose content matches their
/// name (git itself trusts an object file, a pack or the commit-graph without
/// hashing it again, so a sandbox that could write the host's object store could
/// make `git diff` and `git status` show what is not there).
pub const HOST_OBJECTS: &str = "sbx-host-objects";

/// A git directory staged for `--vcs commit`: a tmpfs at `dst` holds copies of its
/// staged files (`before`: name and content, read when the plan was built), with
/// the rest of its top level bound over it. PID 1 passes the launcher a descriptor
/// of that tmpfs, through which the launcher reads what the sandbox left
/// (crate::vcs_stage).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Staged {
    /// The host's git, which checks what the run leaves before it lands.
    #[serde(serialize_with = "super::lossy")]
    pub git: PathBuf,
    #[serde(serialize_with = "super::lossy")]
    pub gitdir: PathBuf,
    #[serde(serialize_with = "super::lossy")]
    pub dst: PathBuf,
    /// The top level's names at planning time.
    #[serde(skip)]
    pub names: Vec<std::ffi::OsString>,
    #[serde(skip)]
    pub before: Vec<(&'static str, Vec<u8>)>,
    /// The loose refs (path under `refs/`, content) copied into the staging tmpfs.
    #[serde(skip)]
    pub refs: Vec<(PathBuf, Vec<u8>)>,
}

/// The largest staged file copied (the index of a very large tree is far smaller).
pub const MAX_STAGED: u64 = 256 << 20;

/// The mounts that protect the metadata in the writable binds of `mounts`: mount
/// points first (each followed by what was mounted at or under it, again), then the
/// read-only binds. Err: a `.git` or `.hg` that is a symlink.
pub fn protect(
    mounts: &[Mount],
    fs: &dyn HostFs,
    git: Option<&Path>,
) -> Result<(Vec<Mount>, Vec<Staged>)> {
    let binds = writable_dirs(mounts, fs);
    let found = find(&binds, fs, git.is_some())?;
    let mut out = mount_points(&found, &binds, mounts);
    let (protecting, staged) = protecting_mounts(&found, &binds, fs, git);
    out.extend(protecting);
    Ok((out, staged))
}

/// Every repository's metadata in the writable binds, from their roots through the
/// submodules and linked worktrees each git directory records (bounded).
fn find(binds: &[(PathBuf, PathBuf)], fs: &dyn HostFs, commit: bool) -> Result<Found> {
    let mut found = Found::default();
    let mut worktrees: Vec<PathBuf> = binds.iter().map(|(s, _)| s.clone()).collect();
    worktrees.sort();
    worktrees.dedup();
    let mut seen_worktrees = BTreeSet::new();
    let mut module_dirs = 0;
    while let Some(w) = worktrees.pop() {
        if !seen_worktrees.insert(w.clone()) || seen_worktrees.len() > MAX_WORKTREES {
            continue;
        }
        let Some((root, _)) = inside(binds, &w) else {
            continue;
        };
        let gitdirs = metadata_in(&w, &root, fs, commit, &mut found)?;
        for g in gitdirs {
            if fs.entry(&g) != Entry::Dir {
                continue;
            }
            if inside(binds, &g).is_some() {
                found.read_only.entry(g.clone()).or_insert(false);
            }
            worktrees.extend(recorded_worktrees(&g, &w, fs, &mut module_dirs));
        }
    }
    Ok(found)
}

/// The `.git` and `.hg` of work tree `w` (in the bind rooted at `root`): each to be
/// read-only (or staged), the directories from the root down to it mount points.
/// Returns the git directories found. Err: a `.git` or `.hg` that is a symlink.
fn metadata_in(
    w: &Path,
    root: &Path,
    fs: &dyn HostFs,
    commit: bool,
    found: &mut Found,
) -> Result<Vec<PathBuf>> {
    let mut gitdirs = Vec::new();
    for name in [".git", ".hg"] {
        let p = w.join(name);
        match fs.entry(&p) {
            Entry::Dir => {
                let stage = commit && name == ".git" && stageable(fs, &p);
                found.read_only.insert(p.clone(), stage);
                if name == ".git" {
                    gitdirs.push(p);
                }
            }
            Entry::File if name == ".git" => {
                found.read_only.insert(p.clone(), false);
                gitdirs.extend(gitdir_of(fs, &p));
            }
            Entry::Symlink(target) => {
                return Err(Error::new(
                    "version-control metadata",
                    format!(
                        "{} is a symlink (to {}) in a writable directory: it cannot be kept \
                         read-only, since the link itself can be replaced. Replace it with the \
                         directory it names, or pass --vcs writable to let the sandbox write it",
                        p.display(),
                        target.display()
                    ),
                ))
            }
            _ => continue,
        }
        // The directories from the bind's root down to this one: mount points.
        let mut d = w.to_path_buf();
        while d != root && d.starts_with(root) {
            found.mount_points.insert(d.clone());
            if !d.pop() {
                break;
            }
        }
    }
    Ok(gitdirs)
}

/// The submodules and linked worktrees git directory `g` (of work tree `w`) records:
/// from its index's gitlinks (authoritative when its config names submodules), its
/// `modules/` (absorbed submodules, any depth: a name may hold `/`) and its
/// `worktrees/*/gitdir`.
fn recorded_worktrees(
    g: &Path,
    w: &Path,
    fs: &dyn HostFs,
    module_dirs: &mut usize,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let config = text(fs, &g.join("config")).unwrap_or_default();
    if config.contains("[submodule ") {
        let hash = if config_value(&config, "objectformat") == Some("sha256") {
            32
        } else {
            20
        };
        let index = fs.read_file(&g.join("index"), MAX_INDEX);
        let wt = worktree_of(fs, g).unwrap_or_else(|| w.to_path_buf());
        let links = index.and_then(|b| crate::gitindex::gitlinks(&b, hash));
        for p in links.unwrap_or_default() {
            out.push(wt.join(String::from_utf8_lossy(&p).as_ref()));
        }
    }
    let mut dirs = vec![g.join("modules")];
    while let Some(m) = dirs.pop() {
        *module_dirs += 1;
        if *module_dirs > MAX_MODULE_DIRS {
            break;
        }
        for name in fs.names_in(&m) {
            let sub = m.join(&name);
            if fs.entry(&sub) != Entry::Dir {
                continue;
            }
            out.extend(worktree_of(fs, &sub));
            dirs.push(sub);
        }
    }
    for name in fs.names_in(&g.join("worktrees")) {
        let file = g.join("worktrees").join(&name).join("gitdir");
        if let Some(wt) = text(fs, &file).and_then(|t| {
            Path::new(t.trim())
                .parent()
                .and_then(|w| fs.canonicalize(w).ok())
        }) {
            out.push(wt);
        }
    }
    out
}

/// Each directory holding metadata, made a mount point (bound over itself), in
/// order from the shallowest, each followed by whatever was mounted at or under it
/// (a --ro-bind, a mask), placed again.
fn mount_points(found: &Found, binds: &[(PathBuf, PathBuf)], mounts: &[Mount]) -> Vec<Mount> {
    let mut out = Vec::new();
    let mut points: Vec<&PathBuf> = found.mount_points.iter().collect();
    points.sort_by_key(|p| p.components().count());
    for p in points {
        let Some((_, dst)) = inside(binds, p) else {
            continue;
        };
        out.push(Mount {
            op: MountOp::Bind {
                src: p.clone(),
                dst: dst.clone(),
                access: Access::ReadWrite,
            },
            origin: "a directory holding version-control metadata, made a mount point \
                     (--vcs writable)"
                .into(),
        });
        out.extend(
            mounts
                .iter()
                .filter(|m| m.op.dst().starts_with(&dst))
                .cloned(),
        );
    }
    out
}

/// The metadata bound read-only over itself, or staged where `--vcs commit` can.
fn protecting_mounts(
    found: &Found,
    binds: &[(PathBuf, PathBuf)],
    fs: &dyn HostFs,
    git: Option<&Path>,
) -> (Vec<Mount>, Vec<Staged>) {
    let (mut out, mut staged) = (Vec::new(), Vec::new());
    for (p, stage) in &found.read_only {
        let Some((_, dst)) = inside(binds, p) else {
            continue;
        };
        if *stage {
            if let Some((mounts, staged_dir)) = stage_mounts(fs, p, &dst, git) {
                out.extend(mounts);
                staged.push(staged_dir);
                continue;
            }
        }
        out.push(Mount {
            op: MountOp::Bind {
                src: p.clone(),
                dst,
                access: Access::ReadOnly,
            },
            origin: "version-control metadata the host executes (read-only by default; \
                     --vcs writable)"
                .into(),
        });
    }
    (out, staged)
}

/// The version-control protection of the plan's writable binds for `vcs`: the
/// mounts join `mounts`; returns the staged git directories and the `-v` line
/// that says where git can commit (said with -v only: a dev run commits every day,
/// and a notice on each would be noise).
pub fn plan(
    vcs: VcsMode,
    mounts: &mut Vec<Mount>,
    fs: &dyn HostFs,
    path: Option<&std::ffi::OsStr>,
    notices: &mut Vec<String>,
) -> Result<(Vec<Staged>, Option<String>)> {
    if vcs == VcsMode::Writable {
        return Ok((Vec::new(), None));
    }
    // The host's git checks what a staged run leaves (crate::vcs_stage): without
    // one, nothing is staged.
    let git = match vcs {
        VcsMode::Commit => find_git(fs, path),
        _ => None,
    };
    if vcs == VcsMode::Commit && git.is_none() {
        notices.push(
            "--vcs commit: no git on PATH to check what the sandbox commits: .git stays read-only"
                .into(),
        );
    }
    let (protected, staged) = protect(mounts, fs, git.as_deref())?;
    let read_only = protected.iter().any(|m| {
        matches!(
            m.op,
            MountOp::Bind {
                access: Access::ReadOnly,
                ..
            }
        )
    });
    let mut line = None;
    if !staged.is_empty() {
        line = Some(format!(
            "git can commit in {} (--vcs commit): what git executes there (config, hooks, \
             info) stays read-only; objects, refs, index and HEAD reach the host after checks, \
             anything else the sandbox adds to .git is discarded",
            staged
                .iter()
                .map(|s| s.dst.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else if read_only && vcs == VcsMode::Commit {
        notices.push(
            "version-control metadata (.git, .hg) in writable directories is read-only here: \
             linked worktrees, submodules, SHA-256 repositories and repositories whose refs \
             cannot be copied (over 16384 loose refs, or a symlink or FIFO under refs) are \
             not staged for --vcs commit"
                .into(),
        );
    } else if read_only {
        notices.push(
            "version-control metadata (.git, .hg) in writable directories is read-only here \
             (what a sandbox writes there, your git would run): --vcs commit to commit from inside"
                .into(),
        );
    }
    mounts.extend(protected);
    Ok((staged, line))
}

/// `git` in the host's PATH (absolute entries only).
fn find_git(fs: &dyn HostFs, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    path?
        .as_bytes()
        .split(|b| *b == b':')
        .filter(|d| d.starts_with(b"/"))
        .map(|d| Path::new(std::ffi::OsStr::from_bytes(d)).join("git"))
        .find(|g| fs.is_executable_file(g))
}

/// A git directory `--vcs commit` can stage: SHA-1 objects (the index is rewritten
/// after the run, and its checksum is SHA-1 only here), objects and refs present.
fn stageable(fs: &dyn HostFs, gitdir: &Path) -> bool {
    let config = text(fs, &gitdir.join("config")).unwrap_or_default();
    config_value(&config, "objectformat").is_none_or(|f| f == "sha1")
        && fs.entry(&gitdir.join("objects")) == Entry::Dir
        && fs.entry(&gitdir.join("refs")) == Entry::Dir
}

/// Files below a directory: relative path and content.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// The loose refs under `refs` (directories, then files with their contents), or
/// None when there is something git does not write there (a symlink, a FIFO, a
/// file too large) or more than [`MAX_REFS`]: such a directory is not staged.
fn walk_refs(fs: &dyn HostFs, refs: &Path) -> Option<(Vec<PathBuf>, Files)> {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for name in fs.names_in(&refs.join(&rel)) {
            let r = rel.join(&name);
            match fs.entry(&refs.join(&r)) {
                Entry::Dir => {
                    dirs.push(r.clone());
                    todo.push(r);
                }
                Entry::File => files.push((r.clone(), fs.read_file(&refs.join(&r), MAX_REF_FILE)?)),
                _ => return None,
            }
            if dirs.len() + files.len() > MAX_REFS {
                return None;
            }
        }
    }
    dirs.sort();
    files.sort();
    Some((dirs, files))
}

/// The mounts of a staged git directory: a tmpfs over it holding copies of the
/// staged files and of the loose refs, an empty `logs` (but for the stash's), the
/// host's objects read-only beside `objects` (which names them in
/// `info/alternates`), every other entry read-only (their mount points made in the
/// tmpfs), symlinks repeated. None: the refs cannot be copied (see [`walk_refs`]).
fn stage_mounts(
    fs: &dyn HostFs,
    gitdir: &Path,
    dst: &Path,
    git: Option<&Path>,
) -> Option<(Vec<Mount>, Staged)> {
    let (ref_dirs, refs) = walk_refs(fs, &gitdir.join("refs"))?;
    let mut logs = Vec::new();
    for l in COPIED_LOGS {
        if let Some(content) = fs.read_file(&gitdir.join("logs").join(l), MAX_COPIED_LOG) {
            logs.push((PathBuf::from(l), content));
        }
    }
    let mut names = fs.names_in(gitdir);
    names.sort();
    let (before, rest) = top_level(fs, gitdir, dst, &names);
    // Room for git's lock file beside each staged file, and for new objects as in
    // any tmpfs sbx makes.
    let bytes: u64 = before.iter().map(|(_, c)| c.len() as u64).sum();
    let mut out = vec![staging_op(
        MountOp::Tmpfs {
            dst: dst.to_path_buf(),
            size: 3 * bytes + (1 << 30),
            mode: 0o755,
        },
        "git directory staged for commit (--vcs commit): its top level on a tmpfs, index, \
         HEAD and refs written back after checks, anything new discarded",
    )];
    for (name, content) in &before {
        out.push(staging_op(
            MountOp::File {
                dst: dst.join(name),
                content: content.clone(),
                mode: 0o644,
            },
            "a staged git file, copied (--vcs commit)",
        ));
    }
    out.extend(copied_refs(dst, &ref_dirs, &refs, &logs));
    out.extend(rest);
    let staged = Staged {
        git: git?.to_path_buf(),
        gitdir: gitdir.to_path_buf(),
        dst: dst.to_path_buf(),
        names,
        before,
        refs,
    };
    Some((out, staged))
}

fn staging_op(op: MountOp, origin: &str) -> Mount {
    Mount {
        op,
        origin: origin.into(),
    }
}

/// The git directory's top level: the staged files' contents (copied into the
/// tmpfs), and the mounts of everything else (objects as an alternate, refs and logs
/// left to the copies, the rest read-only, symlinks repeated).
fn top_level(
    fs: &dyn HostFs,
    gitdir: &Path,
    dst: &Path,
    names: &[std::ffi::OsString],
) -> (Vec<(&'static str, Vec<u8>)>, Vec<Mount>) {
    let op = staging_op;
    let mut before = Vec::new();
    let mut rest = Vec::new();
    for name in names {
        let src = gitdir.join(name);
        let dst = dst.join(name);
        let staged = STAGED_FILES
            .iter()
            .find(|f| name.as_encoded_bytes() == f.as_bytes());
        match (fs.entry(&src), staged) {
            (Entry::File, Some(f)) => {
                if let Some(content) = fs.read_file(&src, MAX_STAGED) {
                    before.push((*f, content));
                }
            }
            (Entry::Dir, _) if name == "objects" => {
                let host = dst.with_file_name(HOST_OBJECTS);
                let mut alternates = host.as_os_str().as_encoded_bytes().to_vec();
                alternates.push(b'\n');
                rest.push(op(
                    MountOp::Bind {
                        src,
                        dst: host,
                        access: Access::ReadOnly,
                    },
                    "the host's git objects, read-only (--vcs commit)",
                ));
                rest.push(op(
                    MountOp::File {
                        dst: dst.join("info/alternates"),
                        content: alternates,
                        mode: 0o644,
                    },
                    "new git objects go to the staging directory, checked after the run \
                     (--vcs commit)",
                ));
            }
            // Copied above (refs) or started afresh (logs).
            (Entry::Dir, _) if name == "refs" || name == "logs" => {}
            (Entry::Dir | Entry::File, _) => rest.push(op(
                MountOp::Bind {
                    src,
                    dst,
                    access: Access::ReadOnly,
                },
                "version-control metadata the host executes, read-only (--vcs commit)",
            )),
            (Entry::Symlink(target), _) => rest.push(op(
                MountOp::Symlink { target, link: dst },
                "a symlink of the git directory, repeated (--vcs commit)",
            )),
            _ => {}
        }
    }
    (before, rest)
}

/// The loose refs and the copied reflogs, made in the tmpfs.
fn copied_refs(dst: &Path, ref_dirs: &[PathBuf], refs: &Files, logs: &Files) -> Vec<Mount> {
    let copied = "git refs and reflogs, copied (--vcs commit)";
    let dir = |d: PathBuf| {
        staging_op(
            MountOp::Dir {
                dst: d,
                mode: 0o755,
            },
            copied,
        )
    };
    let mut out = vec![dir(dst.join("refs")), dir(dst.join("logs"))];
    out.extend(ref_dirs.iter().map(|d| dir(dst.join("refs").join(d))));
    for (top, files) in [("refs", refs), ("logs", logs)] {
        for (rel, content) in files {
            out.push(staging_op(
                MountOp::File {
                    dst: dst.join(top).join(rel),
                    content: content.clone(),
                    mode: 0o644,
                },
                copied,
            ));
        }
    }
    out
}

/// How deep, and through how many directories in all, the look for repositories a
/// sandbox created goes (it runs after every run with a writable directory: bounded).
const NEW_REPO_DEPTH: usize = 8;
const NEW_REPO_DIRS: usize = 20_000;

/// `.git` and `.hg` entries in each writable directory and below it (to
/// [`NEW_REPO_DEPTH`] levels, [`NEW_REPO_DIRS`] directories; not into a repository's
/// own metadata, not through symlinks), with their change times: taken after a run,
/// one changed since it began is a repository the sandbox created (or replaced),
/// which the launcher names. A shell prompt that runs `git status` in every
/// directory would run a planted repository's `core.fsmonitor` on `cd` alone.
pub fn new_repositories(roots: &[PathBuf]) -> BTreeSet<(PathBuf, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeSet::new();
    let mut todo: std::collections::VecDeque<(PathBuf, usize)> =
        roots.iter().map(|r| (r.clone(), 0)).collect();
    let mut visited = 0;
    while let Some((d, depth)) = todo.pop_front() {
        visited += 1;
        if visited > NEW_REPO_DIRS {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == ".git" || name == ".hg" {
                if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                    out.insert((e.path(), m.ctime() * 1_000_000_000 + m.ctime_nsec()));
                }
            } else if depth < NEW_REPO_DEPTH && e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push_back((e.path(), depth + 1));
            }
        }
    }
    out
}

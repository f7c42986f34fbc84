//! Version-control metadata that the host's tools execute, kept read-only inside
//! writable directories. A sandbox that can write `.git/config` sets
//! `core.fsmonitor`, `core.pager` or a filter driver; one that can write
//! `.git/hooks/*` plants a hook: the user's next plain `git status` or `git commit`
//! on the host runs it, outside any sandbox. So, by default, inside every writable
//! bind (OpenAI Codex's Linux sandbox makes the same choice):
//!
//! - a repository's git directory (`.git/`) is bound read-only over itself, all of
//!   it: config, hooks, info, modules, worktrees, and the files git would honour if
//!   created there (`commondir` redirects where config is read, `config.worktree`);
//!   no name-by-name list can cover files that do not exist yet;
//! - a `.git` *file* (a worktree's or submodule's `gitdir:` pointer) is bound
//!   read-only, with the directory holding it made a mount point (a mount point
//!   cannot be renamed away and replaced), and the git directory it names, when
//!   that lies in a writable bind too;
//! - each submodule and linked worktree that the (read-only) git directory records
//!   is protected the same way, so none can be re-pointed at a planted config;
//! - Mercurial's `.hg/` (hgrc hooks) likewise.
//!
//! `--vcs-writable` lets a user who wants to commit from inside opt out. Left as
//! they are, because their tools guard them: direnv's `.envrc` (runs only once
//! `direnv allow`ed, by content hash), editor workspace settings (workspace trust).

use std::path::{Path, PathBuf};

use super::{Access, Mount, MountOp};
use crate::host::{Entry, HostFs};

/// The host path of `p` as the sandbox sees it through the writable binds: (bind
/// source, bind destination) pairs, the last covering bind winning.
fn inside(binds: &[(PathBuf, PathBuf)], host: &Path) -> Option<PathBuf> {
    binds
        .iter()
        .rev()
        .find_map(|(src, dst)| host.strip_prefix(src).ok().map(|rest| dst.join(rest)))
}

/// `gitdir: X` of a `.git` file, resolved against the file's directory.
fn gitdir_of(fs: &dyn HostFs, file: &Path) -> Option<PathBuf> {
    let text = fs.read_small(file)?;
    let text = String::from_utf8(text).ok()?;
    let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    let dir = file.parent()?;
    fs.canonicalize(&super::lexical_abs(target.as_ref(), Some(dir)))
        .ok()
}

/// `core.worktree` of a git config file (a submodule's, absorbed into the
/// superproject's `.git/modules/NAME`), resolved against `gitdir`.
fn worktree_of(fs: &dyn HostFs, gitdir: &Path) -> Option<PathBuf> {
    let text = String::from_utf8(fs.read_small(&gitdir.join("config"))?).ok()?;
    let v = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("worktree"))?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    fs.canonicalize(&super::lexical_abs(v.as_ref(), Some(gitdir)))
        .ok()
}

/// The read-only binds (and mount points) that protect the metadata found in the
/// writable binds of `mounts`.
pub fn protect(mounts: &[Mount], fs: &dyn HostFs) -> Vec<Mount> {
    let binds: Vec<(PathBuf, PathBuf)> = mounts
        .iter()
        .filter_map(|m| match &m.op {
            MountOp::Bind {
                src,
                dst,
                access: Access::ReadWrite | Access::Device,
            } if fs.entry(src) == Entry::Dir => Some((src.clone(), dst.clone())),
            _ => None,
        })
        .collect();
    let mut out: Vec<Mount> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut add = |out: &mut Vec<Mount>, host: &Path, access: Access, why: &str| {
        let Some(dst) = inside(&binds, host) else {
            return;
        };
        if seen.insert((dst.clone(), access == Access::ReadOnly)) {
            out.push(Mount {
                op: MountOp::Bind {
                    src: host.to_path_buf(),
                    dst,
                    access,
                },
                origin: format!("{why} (read-only by default; --vcs-writable)"),
            });
        }
    };
    // Git directories to protect, and worktrees (directories holding a `.git` file).
    let mut gitdirs: Vec<PathBuf> = Vec::new();
    let mut worktrees: Vec<PathBuf> = binds.iter().map(|(s, _)| s.clone()).collect();
    let mut i = 0;
    while i < worktrees.len() && i < 256 {
        let w = worktrees[i].clone();
        i += 1;
        let dotgit = w.join(".git");
        match fs.entry(&dotgit) {
            Entry::Dir => gitdirs.push(dotgit),
            // A `.git` symlink: what it leads to is protected where it is.
            Entry::Symlink(_) => gitdirs.extend(fs.canonicalize(&dotgit).ok()),
            Entry::File => {
                // The pointer itself, and its directory made a mount point (unless it
                // is a bind's root already) so it cannot be renamed and replaced.
                if !binds.iter().any(|(s, _)| *s == w) {
                    add(&mut out, &w, Access::ReadWrite, "git worktree");
                }
                add(&mut out, &dotgit, Access::ReadOnly, "git pointer file");
                if let Some(g) = gitdir_of(fs, &dotgit) {
                    gitdirs.push(g);
                }
            }
            _ => {}
        }
        for hg in [w.join(".hg")] {
            if fs.entry(&hg) == Entry::Dir {
                add(&mut out, &hg, Access::ReadOnly, "mercurial metadata");
            }
        }
        // Submodules (recorded in the read-only git directory, so the sandbox cannot
        // hide one) and linked worktrees of the git directories found so far.
        while let Some(g) = gitdirs.pop() {
            if fs.entry(&g) != Entry::Dir {
                continue;
            }
            add(&mut out, &g, Access::ReadOnly, "git directory");
            let mut modules = vec![g.join("modules")];
            while let Some(m) = modules.pop() {
                for name in fs.names_in(&m) {
                    let sub = m.join(&name);
                    if let Some(wt) = worktree_of(fs, &sub) {
                        worktrees.push(wt);
                    }
                    modules.push(sub.join("modules"));
                }
            }
            for name in fs.names_in(&g.join("worktrees")) {
                if let Some(file) = fs
                    .read_small(&g.join("worktrees").join(&name).join("gitdir"))
                    .and_then(|t| String::from_utf8(t).ok())
                {
                    if let Some(wt) = Path::new(file.trim())
                        .parent()
                        .and_then(|w| fs.canonicalize(w).ok())
                    {
                        worktrees.push(wt);
                    }
                }
            }
        }
    }
    // Mount points (the worktree directories) before what is bound inside them.
    out.sort_by_key(|m| (m.op.dst().components().count(), m.op.dst().to_path_buf()));
    out
}

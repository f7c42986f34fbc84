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
//! `--vcs-writable` lets a user who wants to commit from inside opt out. Not
//! covered: a repository the sandbox *creates* where none was (git runs its config
//! only when used inside that directory; the launcher warns when a writable
//! directory gained one, see [`new_repositories`]); direnv's `.envrc` and editor
//! workspace settings are guarded by their own tools (`direnv allow` hashes,
//! workspace trust).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Access, Mount, MountOp};
use crate::error::{Error, Result};
use crate::host::{Entry, HostFs};

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

/// git's offset varint (varint.c).
fn varint(b: &[u8], i: &mut usize) -> Option<usize> {
    let mut c = *b.get(*i)?;
    *i += 1;
    let mut v = (c & 127) as usize;
    while c & 128 != 0 {
        c = *b.get(*i)?;
        *i += 1;
        v = v.checked_add(1)?.checked_mul(128)? + (c & 127) as usize;
    }
    Some(v)
}

/// The paths of the gitlinks (submodules: mode 160000) in a git index, versions 2 to
/// 4 (gitformat-index(5)); `hash` is 20 (SHA-1) or 32 (SHA-256). None: not an index
/// this understands.
pub fn gitlinks(index: &[u8], hash: usize) -> Option<Vec<PathBuf>> {
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(index.get(i..i + 4)?.try_into().ok()?))
    };
    if index.get(..4)? != b"DIRC" {
        return None;
    }
    let version = u32_at(4)?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = u32_at(8)? as usize;
    let mut out = Vec::new();
    let mut i = 12;
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = i;
        let mode = u32_at(i + 24)?;
        i += 40 + hash;
        let flags = u16::from_be_bytes(index.get(i..i + 2)?.try_into().ok()?);
        i += 2;
        if version >= 3 && flags & 0x4000 != 0 {
            i += 2;
        }
        let path = if version == 4 {
            let strip = varint(index, &mut i)?;
            let end = i + index.get(i..)?.iter().position(|b| *b == 0)?;
            let mut p = prev.get(..prev.len().checked_sub(strip)?)?.to_vec();
            p.extend_from_slice(&index[i..end]);
            i = end + 1;
            p
        } else {
            let end = i + index.get(i..)?.iter().position(|b| *b == 0)?;
            let p = index[i..end].to_vec();
            // NUL padding to a multiple of 8 bytes from the entry's start (1 to 8).
            i = start + (end - start + 8) / 8 * 8;
            p
        };
        if mode & 0o170000 == 0o160000 {
            out.push(PathBuf::from(std::ffi::OsString::from(
                String::from_utf8_lossy(&path).into_owned(),
            )));
        }
        prev = path;
    }
    Some(out)
}

/// What to protect: read-only entries and the directories to make mount points.
#[derive(Default)]
struct Found {
    read_only: BTreeSet<PathBuf>,
    mount_points: BTreeSet<PathBuf>,
}

/// The mounts that protect the metadata in the writable binds of `mounts`: mount
/// points first (each followed by what was mounted at or under it, again), then the
/// read-only binds. Err: a `.git` or `.hg` that is a symlink.
pub fn protect(mounts: &[Mount], fs: &dyn HostFs) -> Result<Vec<Mount>> {
    let binds = writable_dirs(mounts, fs);
    let roots: BTreeSet<PathBuf> = binds.iter().map(|(s, _)| s.clone()).collect();
    let mut found = Found::default();
    let mut worktrees: Vec<PathBuf> = roots.iter().cloned().collect();
    let mut seen_worktrees = BTreeSet::new();
    let mut module_dirs = 0;
    while let Some(w) = worktrees.pop() {
        if !seen_worktrees.insert(w.clone()) || seen_worktrees.len() > MAX_WORKTREES {
            continue;
        }
        let Some((root, _)) = inside(&binds, &w) else {
            continue;
        };
        let mut gitdirs = Vec::new();
        for name in [".git", ".hg"] {
            let p = w.join(name);
            match fs.entry(&p) {
                Entry::Dir => {
                    found.read_only.insert(p.clone());
                    if name == ".git" {
                        gitdirs.push(p);
                    }
                }
                Entry::File if name == ".git" => {
                    found.read_only.insert(p.clone());
                    gitdirs.extend(gitdir_of(fs, &p));
                }
                Entry::Symlink(target) => {
                    return Err(Error::new(
                        "version-control metadata",
                        format!(
                            "{} is a symlink (to {}) in a writable directory: it cannot be kept \
                             read-only, since the link itself can be replaced. Replace it with the \
                             directory it names, or pass --vcs-writable to let the sandbox write it",
                            p.display(),
                            target.display()
                        ),
                    ))
                }
                _ => continue,
            }
            // The directories from the bind's root down to this one: mount points.
            let mut d = w.clone();
            while d != root && d.starts_with(&root) {
                found.mount_points.insert(d.clone());
                if !d.pop() {
                    break;
                }
            }
        }
        for g in gitdirs {
            if fs.entry(&g) != Entry::Dir {
                continue;
            }
            if inside(&binds, &g).is_some() {
                found.read_only.insert(g.clone());
            }
            let config = text(fs, &g.join("config")).unwrap_or_default();
            // Submodules from the index: the authoritative list.
            if config.contains("[submodule ") {
                let hash = if config_value(&config, "objectformat") == Some("sha256") {
                    32
                } else {
                    20
                };
                let index = fs.read_file(&g.join("index"), MAX_INDEX);
                let wt = worktree_of(fs, &g).unwrap_or_else(|| w.clone());
                for p in index.and_then(|b| gitlinks(&b, hash)).unwrap_or_default() {
                    worktrees.push(wt.join(p));
                }
            }
            // Absorbed submodules (any depth: a name may hold `/`), nested ones too.
            let mut dirs = vec![g.join("modules")];
            while let Some(m) = dirs.pop() {
                module_dirs += 1;
                if module_dirs > MAX_MODULE_DIRS {
                    break;
                }
                for name in fs.names_in(&m) {
                    let sub = m.join(&name);
                    if fs.entry(&sub) != Entry::Dir {
                        continue;
                    }
                    if let Some(wt) = worktree_of(fs, &sub) {
                        worktrees.push(wt);
                    }
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
                    worktrees.push(wt);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut points: Vec<&PathBuf> = found.mount_points.iter().collect();
    points.sort_by_key(|p| p.components().count());
    for p in points {
        let Some((_, dst)) = inside(&binds, p) else {
            continue;
        };
        out.push(Mount {
            op: MountOp::Bind {
                src: p.clone(),
                dst: dst.clone(),
                access: Access::ReadWrite,
            },
            origin: "a directory holding version-control metadata, made a mount point \
                     (--vcs-writable)"
                .into(),
        });
        // Whatever was mounted at or under it (a --ro-bind, a mask) is placed again.
        out.extend(
            mounts
                .iter()
                .filter(|m| m.op.dst().starts_with(&dst))
                .cloned(),
        );
    }
    for p in &found.read_only {
        if let Some((_, dst)) = inside(&binds, p) {
            out.push(Mount {
                op: MountOp::Bind {
                    src: p.clone(),
                    dst,
                    access: Access::ReadOnly,
                },
                origin: "version-control metadata the host executes (read-only by default; \
                         --vcs-writable)"
                    .into(),
            });
        }
    }
    Ok(out)
}

/// `.git` and `.hg` entries directly in, or one level below, each writable directory,
/// with their change times: taken before and after a run, the difference is a
/// repository the sandbox created (or replaced), which the launcher warns about.
pub fn new_repositories(roots: &[PathBuf]) -> BTreeSet<(PathBuf, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeSet::new();
    let mut look = |d: &Path| {
        for name in [".git", ".hg"] {
            let p = d.join(name);
            if let Ok(m) = std::fs::symlink_metadata(&p) {
                out.insert((p, m.ctime() * 1_000_000_000 + m.ctime_nsec()));
            }
        }
    };
    for r in roots {
        look(r);
        if let Ok(entries) = std::fs::read_dir(r) {
            for e in entries.flatten().take(4096) {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    look(&e.path());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u32, path: &str, v4_strip: Option<usize>) -> Vec<u8> {
        let mut e = vec![0u8; 24];
        e.extend_from_slice(&mode.to_be_bytes());
        e.extend_from_slice(&[0u8; 12]);
        e.extend_from_slice(&[0u8; 20]);
        e.extend_from_slice(&(path.len() as u16).to_be_bytes());
        match v4_strip {
            Some(n) => {
                e.push(n as u8);
                e.extend_from_slice(path.as_bytes());
                e.push(0);
            }
            None => {
                e.extend_from_slice(path.as_bytes());
                let len = e.len();
                e.resize(len + (8 - len % 8), 0);
            }
        }
        e
    }

    #[test]
    fn gitlinks_are_read_from_every_index_version() {
        for version in [2u32, 3] {
            let mut idx = b"DIRC".to_vec();
            idx.extend_from_slice(&version.to_be_bytes());
            idx.extend_from_slice(&3u32.to_be_bytes());
            idx.extend(entry(0o100644, "README", None));
            idx.extend(entry(0o160000, "libs/sub", None));
            idx.extend(entry(0o160000, "vendor", None));
            assert_eq!(
                gitlinks(&idx, 20).unwrap(),
                [PathBuf::from("libs/sub"), PathBuf::from("vendor")]
            );
        }
        // Version 4: each path strips bytes of the one before.
        let mut idx = b"DIRC".to_vec();
        idx.extend_from_slice(&4u32.to_be_bytes());
        idx.extend_from_slice(&2u32.to_be_bytes());
        idx.extend(entry(0o100644, "libs/a.c", Some(0)));
        idx.extend(entry(0o160000, "sub", Some(3)));
        assert_eq!(gitlinks(&idx, 20).unwrap(), [PathBuf::from("libs/sub")]);
        assert!(
            gitlinks(b"DIRC\0\0\0\x02\0\0\0\x05", 20).is_none(),
            "truncated"
        );
        assert!(gitlinks(b"nope", 20).is_none());
    }
}

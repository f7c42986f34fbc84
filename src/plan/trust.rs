//! Two rules about what earlier sandboxes may have written.
//!
//! **Profile paths follow only root's symlinks.** A sandbox writes as the user, so
//! any symlink the user owns (or a subordinate id owns) may have been planted by an
//! earlier sandbox: `~/.cache/mozilla -> ~/.ssh` made the next browser sandbox bind
//! the user's keys read-write (the class of flatpak's CVE-2024-42472). A path that
//! comes from a profile is therefore resolved component by component, following a
//! symlink only where root owns it (merged `/usr`, `/var/run`, an administrator's
//! `/home -> /var/home`); any other symlink refuses the entry. A path the user typed
//! on the command line (`--bind`) is theirs and may follow links (`--dry-run` and
//! `-v` show where it led). The launcher opens the resolved path again with
//! `RESOLVE_NO_SYMLINKS`, so a link swapped in after this check fails the launch
//! rather than being followed.
//!
//! **Profiles stay out of reach.** The sandbox may never write to the directories profiles are loaded from: a
//! sandbox that could edit `~/.config/sbx/profiles/default.toml` would choose the
//! confinement of every later sandbox (the lesson of firejail's user-writable
//! `.local` overrides). A writable bind that reaches a profile directory, from above
//! or below, is refused unless a later mount covers it for the whole run: a mount
//! that really stands (a mask of a missing path is skipped), reached without a
//! symlink, with nothing the sandbox could rename between the bind and it (the
//! mount would move along with a renamed directory, and a new profile directory
//! could be made in its place).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::tree::{Built, Exposed};
use super::{Access, Mount, MountOp};
use crate::error::{Error, Result};
use crate::host::{Entry, HostFs};
use crate::profile::Locations;

pub fn check(
    mounts: &[Mount],
    built: &Built,
    locs: &Locations,
    extra: &[PathBuf],
    fs: &dyn HostFs,
) -> Result<()> {
    let mut dirs: Vec<PathBuf> = locs.dirs().iter().map(|p| p.to_path_buf()).collect();
    dirs.extend(extra.iter().cloned());
    // Bind sources are resolved paths: compare with the directories resolved too (a
    // symlinked ~/.config, as stow-managed dotfiles have), as well as written.
    let resolved: Vec<PathBuf> = dirs.iter().map(|d| resolve_lenient(fs, d)).collect();
    for r in resolved {
        if !dirs.contains(&r) {
            dirs.push(r);
        }
    }
    for i in built.standing() {
        let m = &mounts[i];
        let MountOp::Bind { src, dst, access } = &m.op else {
            continue;
        };
        if *access == Access::ReadOnly {
            continue;
        }
        for d in &dirs {
            // Where the profile directory (or the part of it bound) appears inside.
            let inside = if let Ok(rest) = d.strip_prefix(src) {
                dst.join(rest)
            } else if src.starts_with(d) {
                dst.clone()
            } else {
                continue;
            };
            if let Err(why) = built.hidden_from(i, dst, &inside) {
                let why = match why {
                    Exposed::Uncovered => " (no later mount covers it)".to_string(),
                    Exposed::Unreachable => {
                        " (a file on the way the sandbox could replace with a directory)"
                            .to_string()
                    }
                    Exposed::Link => {
                        " (the mask over it is reached through a symlink the sandbox could replace)"
                            .to_string()
                    }
                    Exposed::Movable(p) => format!(
                        " (the mask over it does not hold: the sandbox could rename {} and make a \
                         new one in its place)",
                        p.display()
                    ),
                };
                // The fix that holds: the directory right below the bind's
                // destination, covered (a mount point cannot be renamed).
                let top = inside
                    .strip_prefix(dst)
                    .ok()
                    .and_then(|r| r.components().next())
                    .map(|c| format!(", or mask or bind read-only {}", dst.join(c).display()))
                    .unwrap_or_default();
                return Err(Error::new(
                    m.origin.clone(),
                    format!(
                        "refused: it would give the sandbox write access to the profile directory {} \
                         (at {} inside){why}; bind it read-only{top}",
                        d.display(),
                        inside.display(),
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `p` with symlinks resolved as far as it exists, the rest appended as written.
pub fn resolve_lenient(fs: &dyn HostFs, p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(real) = fs.canonicalize(&cur) {
            return rest.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// Why a profile path was not resolved.
#[derive(Debug)]
pub enum Unresolved {
    /// Missing, unreadable, or a loop: the error realpath(3) would give.
    Io(std::io::Error),
    /// The path resolved differently a moment later: something on the way is being
    /// swapped for a link.
    Changed { path: PathBuf, now: PathBuf },
    /// A symlink root does not own lies on the way.
    Planted {
        link: PathBuf,
        /// Where it points, made absolute (for the message and the explicit grant).
        target: PathBuf,
        owner: Option<u32>,
    },
}

impl Unresolved {
    /// The refusal, naming the link, its target and how to grant the target.
    pub fn describe(&self, written: &str) -> String {
        match self {
            Unresolved::Io(e) => match e.raw_os_error() {
                Some(n) => format!(
                    "source: realpath({written:?}): {}",
                    crate::error::strerror(n)
                ),
                None => format!("source {written:?}: {e}"),
            },
            Unresolved::Changed { path, now } => format!(
                "refused: {} resolved to {} a moment after it was checked: something on \
                 the way is being replaced by a symlink",
                path.display(),
                now.display()
            ),
            Unresolved::Planted {
                link,
                target,
                owner,
            } => format!(
                "refused: {} is a symlink to {} owned by {}; a profile path follows only root's \
                 symlinks, since a sandbox could have planted this one. If you mean it, grant the \
                 target explicitly (--bind {}:{}) or replace the link with a real directory",
                link.display(),
                target.display(),
                owner.map_or("nobody known".to_string(), |u| format!("uid {u}")),
                target.display(),
                link.display()
            ),
        }
    }
}

const MAX_LINKS: usize = 40;

/// `p` (relative to `cwd` if relative) resolved as a profile path: a symlink is
/// followed only where root owns it. The result is the real path, as realpath(3)
/// would give it.
pub fn resolve_profile_path(
    fs: &dyn HostFs,
    p: &Path,
    cwd: Option<&Path>,
) -> std::result::Result<PathBuf, Unresolved> {
    let start = match (p.is_absolute(), cwd) {
        (true, _) => p.to_path_buf(),
        (false, Some(c)) => c.join(p),
        (false, None) => {
            return Err(Unresolved::Io(std::io::Error::from_raw_os_error(
                libc::ENOENT,
            )))
        }
    };
    let mut todo: VecDeque<OsString> = comps(&start);
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        if let Entry::Symlink(target) = fs.entry(&next) {
            let owner = fs.owner(&next);
            if owner != Some(0) {
                return Err(Unresolved::Planted {
                    target: super::lexical_abs(target.as_os_str(), Some(&cur)),
                    link: next,
                    owner,
                });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Unresolved::Io(std::io::Error::from_raw_os_error(
                    libc::ELOOP,
                )));
            }
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            for t in comps::<Vec<OsString>>(&target).into_iter().rev() {
                todo.push_front(t);
            }
            continue;
        }
        cur = next;
    }
    // Every link on the way was root's: `cur` is the real path. realpath(3) must
    // agree; where it does not, a component was swapped for a link while it was
    // being checked (a sandbox writing there now): refused, never followed.
    let real = fs.canonicalize(&cur).map_err(Unresolved::Io)?;
    if real != cur {
        return Err(Unresolved::Changed {
            path: cur,
            now: real,
        });
    }
    Ok(real)
}

/// The names and `..`s of `p`, in order (what a resolver walks).
pub(crate) fn comps<C: FromIterator<OsString>>(p: &Path) -> C {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// A missing path that a profile entry asks sbx to make: the part that exists
/// resolved by the profile-path rule, the rest appended. Only inside `home` (a
/// profile makes nothing elsewhere on the host).
pub fn resolve_for_create(
    fs: &dyn HostFs,
    p: &Path,
    home: &Path,
) -> std::result::Result<PathBuf, Unresolved> {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match resolve_profile_path(fs, &existing, None) {
            Ok(real) => {
                let full = rest.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
                if !full.starts_with(home) || full == home {
                    return Err(Unresolved::Io(std::io::Error::other(format!(
                        "{} is not inside $HOME ({})",
                        full.display(),
                        home.display()
                    ))));
                }
                return Ok(full);
            }
            Err(Unresolved::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                // (file_name is None for a path that ends in `..`.)
                let name = existing.file_name().map(|n| n.to_os_string());
                match (name, existing.parent()) {
                    (Some(n), Some(parent)) => {
                        rest.push(n);
                        existing = parent.to_path_buf();
                    }
                    _ => return Err(Unresolved::Io(e)),
                }
            }
            Err(other) => return Err(other),
        }
    }
}

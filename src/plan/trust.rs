//! The sandbox may never write to the directories profiles are loaded from: a
//! sandbox that could edit `~/.config/sbx/profiles/default.toml` would choose the
//! confinement of every later sandbox (the lesson of firejail's user-writable
//! `.local` overrides). A writable bind that reaches a profile directory, from above
//! or below, is refused unless a mask that exists on the host covers it.

use std::path::{Path, PathBuf};

use super::{Access, Mount, MountOp};
use crate::error::{Error, Result};
use crate::host::{Entry, HostFs};
use crate::profile::Locations;

pub fn check(mounts: &[Mount], locs: &Locations, extra: &[PathBuf], fs: &dyn HostFs) -> Result<()> {
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
    for (i, m) in mounts.iter().enumerate() {
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
            if !masked_later(&mounts[i + 1..], &inside, src, dst, fs) {
                return Err(Error::new(
                    m.origin.clone(),
                    format!(
                        "refused: it would give the sandbox write access to the profile directory {} \
                         (at {} inside); bind it read-only or mask that directory",
                        d.display(),
                        inside.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A later mask covers `inside`, and it will really be mounted: what it covers exists
/// on the host, looked up through the bind (`src` shown at `dst`) as the launch will
/// see it. A mask of a missing path is skipped at launch, and the writable bind could
/// then create the directory.
fn masked_later(later: &[Mount], inside: &Path, src: &Path, dst: &Path, fs: &dyn HostFs) -> bool {
    later.iter().any(|m| match &m.op {
        MountOp::Mask { dst: mask } if inside.starts_with(mask) => {
            let host = match mask.strip_prefix(dst) {
                Ok(rest) => src.join(rest),
                Err(_) => mask.clone(),
            };
            // A real directory or file, reached without a symlink: a mask over a
            // symlink lands on its target and leaves the link itself writable.
            matches!(fs.entry(&host), Entry::Dir | Entry::File)
                && fs.canonicalize(&host).ok().as_deref() == Some(host.as_path())
        }
        _ => false,
    })
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

//! git's index file (gitformat-index(5)), versions 2 to 4: read for the submodules it
//! records (plan/vcs.rs) and rewritten, checked, when a sandbox staged under
//! `--vcs commit` changed it (vcs_stage.rs).
//!
//! The index is not just data git reads: it is a cache git trusts. Its stat fields
//! tell `git status` a file is unchanged without reading it (a sandbox that edits a
//! file and records the new stat data with the old blob hides the edit from the
//! user's review); the assume-valid and skip-worktree bits make git skip a file
//! altogether; the cache-tree extension is the tree `git commit` writes, the
//! untracked cache says which directories hold no new file. So [`sanitize`] keeps an
//! entry as it is only when the old index had it byte for byte; any other entry loses
//! its stat data (zero size: git re-reads the file, as after `git read-tree`) and the
//! two bits, and every optional extension is dropped (git rebuilds them).

use std::collections::BTreeMap;

/// One entry: the 40 bytes of stat data (mode at 24..28), the object id, the flags
/// without the name length, the extended flags (version 3 and later) and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stat: [u8; 40],
    pub oid: Vec<u8>,
    pub flags: u16,
    pub ext: u16,
    pub path: Vec<u8>,
}

impl Entry {
    pub fn mode(&self) -> u32 {
        u32::from_be_bytes(self.stat[24..28].try_into().expect("4 bytes"))
    }
}

const ASSUME_VALID: u16 = 0x8000;
const EXTENDED: u16 = 0x4000;
const STAGE: u16 = 0x3000;
const SKIP_WORKTREE: u16 = 0x4000;
const INTENT_TO_ADD: u16 = 0x2000;

/// A parsed index: version, entries, and the extensions' signatures.
#[derive(Debug)]
pub struct Index {
    pub version: u32,
    pub entries: Vec<Entry>,
    pub extensions: Vec<[u8; 4]>,
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

/// Parse `b`, whose object ids are `hash` bytes long (20: SHA-1, 32: SHA-256). None:
/// not an index this understands. The trailing checksum is not verified (git does,
/// on its own reads; a rewritten index gets a new one).
pub fn parse(b: &[u8], hash: usize) -> Option<Index> {
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(i..i.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    if b.get(..4)? != b"DIRC" {
        return None;
    }
    let version = u32_at(4)?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = u32_at(8)? as usize;
    let end = b.len().checked_sub(hash)?;
    let mut entries = Vec::with_capacity(count.min(1 << 20));
    let mut i = 12;
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = i;
        let stat: [u8; 40] = b.get(i..i + 40)?.try_into().ok()?;
        i += 40;
        let oid = b.get(i..i + hash)?.to_vec();
        i += hash;
        let flags = u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?);
        i += 2;
        let mut ext = 0;
        if flags & EXTENDED != 0 {
            if version < 3 {
                return None;
            }
            ext = u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?);
            i += 2;
        }
        let path = if version == 4 {
            let strip = varint(b, &mut i)?;
            let nul = i + b.get(i..end)?.iter().position(|c| *c == 0)?;
            let mut p = prev.get(..prev.len().checked_sub(strip)?)?.to_vec();
            p.extend_from_slice(&b[i..nul]);
            i = nul + 1;
            p
        } else {
            let nul = i + b.get(i..end)?.iter().position(|c| *c == 0)?;
            let p = b[i..nul].to_vec();
            // NUL padding to a multiple of 8 bytes from the entry's start (1 to 8).
            i = start + (nul - start + 8) / 8 * 8;
            p
        };
        prev = path.clone();
        entries.push(Entry {
            stat,
            oid,
            flags: flags & !(EXTENDED | 0x0fff),
            ext,
            path,
        });
    }
    let mut extensions = Vec::new();
    while i + 8 <= end {
        let sig: [u8; 4] = b[i..i + 4].try_into().ok()?;
        let size = u32_at(i + 4)? as usize;
        i = i.checked_add(8)?.checked_add(size)?;
        if i > end {
            return None;
        }
        extensions.push(sig);
    }
    if i != end {
        return None;
    }
    Some(Index {
        version,
        entries,
        extensions,
    })
}

/// The paths of the gitlinks (submodules: mode 160000). None: not an index this
/// understands.
pub fn gitlinks(index: &[u8], hash: usize) -> Option<Vec<Vec<u8>>> {
    Some(
        parse(index, hash)?
            .entries
            .into_iter()
            .filter(|e| e.mode() & 0o170000 == 0o160000)
            .map(|e| e.path)
            .collect(),
    )
}

/// Whether git would accept `path` in an index (read-cache.c, verify_path, with
/// core.protectNTFS and core.protectHFS as on any host): no empty, `.` or `..`
/// component and no `.git` in any spelling a filesystem may fold to it (any case,
/// trailing dots or spaces, the 8.3 name `git~1`); `.gitmodules` not a symlink. An
/// index that names `.git/hooks/pre-commit` or `../.bashrc` has the host's next
/// `git checkout -- .` write there.
pub fn path_is_safe(path: &[u8], mode: u32) -> bool {
    if path.is_empty() || path.starts_with(b"/") {
        return false;
    }
    path.split(|c| *c == b'/').all(|comp| {
        // HFS+ ignores zero-width code points (U+200C..U+200F, U+202A..U+202E,
        // U+206A..U+206F, U+FEFF) in names: they are dropped before comparing.
        let mut folded = Vec::with_capacity(comp.len());
        let mut i = 0;
        while i < comp.len() {
            match comp.get(i..i + 3) {
                Some([0xe2, 0x80, 0x8c..=0x8f] | [0xe2, 0x80, 0xaa..=0xae])
                | Some([0xe2, 0x81, 0xaa..=0xaf] | [0xef, 0xbb, 0xbf]) => i += 3,
                _ => {
                    folded.push(comp[i].to_ascii_lowercase());
                    i += 1;
                }
            }
        }
        // NTFS drops trailing dots and spaces.
        let trimmed = folded
            .iter()
            .rposition(|c| *c != b'.' && *c != b' ')
            .map_or(&folded[..0], |end| &folded[..=end]);
        !comp.is_empty()
            && comp != b"."
            && comp != b".."
            && trimmed != b".git"
            && folded != b"git~1"
            && !(mode & 0o170000 == 0o120000 && trimmed == b".gitmodules")
    })
}

/// The SHA-1 index `new` a sandbox wrote, made safe to hand to the host's git: see
/// the module's comment. `old`: the index before the run (None: there was none).
/// Err: an index that cannot be rewritten (a split or sparse index, a required
/// extension, or not an index), or that git must not be given: a path git would
/// refuse ([`path_is_safe`]) or a submodule at a new path (the host's `git status`
/// runs in a submodule, with that repository's own config: a sandbox that made one
/// with a `core.fsmonitor` would have it run), said in words.
pub fn sanitize(old: Option<&[u8]>, new: &[u8]) -> Result<Vec<u8>, String> {
    let idx = parse(new, 20).ok_or("not a git index (version 2 to 4, SHA-1)")?;
    for sig in &idx.extensions {
        let name = String::from_utf8_lossy(sig).into_owned();
        match sig {
            b"link" => return Err("a split index (extension `link`)".into()),
            b"sdir" => return Err("a sparse index (extension `sdir`)".into()),
            // A lowercase first letter marks an extension git must understand.
            [c, ..] if !c.is_ascii_uppercase() => {
                return Err(format!("a required extension `{name}`"))
            }
            _ => {}
        }
    }
    let before: BTreeMap<Vec<u8>, Entry> = old
        .and_then(|o| parse(o, 20))
        .map(|o| o.entries.into_iter().map(|e| (e.path.clone(), e)).collect())
        .unwrap_or_default();
    let mut out_entries = Vec::with_capacity(idx.entries.len());
    in_git_order(&idx.entries)?;
    for e in &idx.entries {
        let shown = String::from_utf8_lossy(&e.path);
        if !path_is_safe(&e.path, e.mode()) {
            return Err(format!("a path git must not check out: {shown:?}"));
        }
        // What git writes in an index: files, executables, symlinks, submodules (a
        // directory entry is a sparse index's, refused above).
        if !matches!(e.mode(), 0o100644 | 0o100755 | 0o120000 | 0o160000) {
            return Err(format!("an entry {shown:?} with mode {:o}", e.mode()));
        }
        if e.oid.iter().all(|b| *b == 0) {
            return Err(format!("an entry {shown:?} naming no object"));
        }
        let was_gitlink = before
            .get(&e.path)
            .is_some_and(|o| o.mode() & 0o170000 == 0o160000);
        if e.mode() & 0o170000 == 0o160000 && !was_gitlink {
            return Err(format!("a new submodule at {shown:?}"));
        }
    }
    for mut e in idx.entries {
        if before.get(&e.path) != Some(&e) {
            let kept = before.get(&e.path).filter(|o| o.oid == e.oid);
            // Stat data zeroed, mode kept: git compares the file's content again.
            let mode: [u8; 4] = e.stat[24..28].try_into().expect("4 bytes");
            e.stat = [0; 40];
            e.stat[24..28].copy_from_slice(&mode);
            if kept.is_none_or(|o| o.flags & ASSUME_VALID == 0) {
                e.flags &= !ASSUME_VALID;
            }
            if kept.is_none_or(|o| o.ext & SKIP_WORKTREE == 0) {
                e.ext &= !SKIP_WORKTREE;
            }
        }
        e.flags &= ASSUME_VALID | STAGE;
        e.ext &= SKIP_WORKTREE | INTENT_TO_ADD;
        out_entries.push(e);
    }
    Ok(write(&out_entries))
}

/// Entries in the order git keeps them (read-cache.c): by path, then stage, each
/// (path, stage) once, and no path that is also a directory of another (`x` beside
/// `x/y`): git reads any other index wrongly, and the host's next commit would
/// write a tree fsck refuses.
fn in_git_order(entries: &[Entry]) -> Result<(), String> {
    let stage = |e: &Entry| (e.flags & STAGE) >> 12;
    for w in entries.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if (a.path.as_slice(), stage(a)) >= (b.path.as_slice(), stage(b)) {
            return Err(format!(
                "entries out of git's order or repeated ({:?})",
                String::from_utf8_lossy(&b.path)
            ));
        }
    }
    // `x` and `x/…`: after sorting, the directory's entries follow `x` directly or
    // after other names that start with `x` and a byte below `/` (`x-1`, `x.c`).
    let paths: std::collections::BTreeSet<&[u8]> =
        entries.iter().map(|e| e.path.as_slice()).collect();
    for e in entries {
        let mut p = e.path.as_slice();
        while let Some(i) = p.iter().rposition(|c| *c == b'/') {
            p = &p[..i];
            if paths.contains(p) {
                return Err(format!(
                    "{:?} is both a file and a directory",
                    String::from_utf8_lossy(p)
                ));
            }
        }
    }
    Ok(())
}

/// An index of `entries` (version 2, or 3 when an entry has extended flags), with
/// no extension and its SHA-1 trailer.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let version: u32 = if entries.iter().any(|e| e.ext != 0) {
        3
    } else {
        2
    };
    let mut out = b"DIRC".to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        let start = out.len();
        out.extend_from_slice(&e.stat);
        out.extend_from_slice(&e.oid);
        let mut flags = e.flags | (e.path.len().min(0xfff) as u16);
        if e.ext != 0 {
            flags |= EXTENDED;
        }
        out.extend_from_slice(&flags.to_be_bytes());
        if e.ext != 0 {
            out.extend_from_slice(&e.ext.to_be_bytes());
        }
        out.extend_from_slice(&e.path);
        let len = out.len() - start;
        out.resize(start + (len + 8) / 8 * 8, 0);
    }
    let sum = crate::vcs_stage::sha1::digest(&out);
    out.extend_from_slice(&sum);
    out
}

#[cfg(test)]
mod tests;

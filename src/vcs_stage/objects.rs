//! What the launcher checks of the git objects a sandbox wrote before any joins the
//! host's object store: each is what its name says (crate::vcs_stage), each tree
//! passes the checks `git fsck` makes before a checkout could write a path git
//! must not write, and nothing is added that points at an object the host does
//! not have (a ref is moved only to a commit whose history is complete).
//!
//! The tree checks follow git's fsck.c (`fsck_tree`, `fsck_gitmodules`): entry
//! names that are empty, `.`, `..`, hold `/` or are `.git` in any spelling NTFS or
//! HFS+ folds to it (CVE-2014-9390) are refused, as are unknown modes, entries out
//! of order or repeated, `.gitmodules`, `.gitattributes`, `.gitignore` or `.mailmap`
//! as symlinks (CVE-2018-11233's class), and a `.gitmodules` whose submodule names
//! climb out with `..` (CVE-2018-11235), whose path or url starts with `-`
//! (CVE-2018-17456) or that sets `update = !command`. A gitlink (a submodule
//! commit) is refused in a repository that had no submodules: a commit made inside
//! must not bring the host's git a nested repository to fetch and run.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use std::os::unix::ffi::OsStrExt;

use crate::sys;

pub type Oid = [u8; 20];

/// A verified object the sandbox wrote: its type and, for all but large blobs,
/// its content (after the `type len\0` header).
pub struct Object {
    pub kind: Kind,
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Blob,
    Tree,
    Commit,
    Tag,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "blob" => Kind::Blob,
            "tree" => Kind::Tree,
            "commit" => Kind::Commit,
            "tag" => Kind::Tag,
            _ => return None,
        })
    }
}

/// Blobs kept in memory after hashing (a `.gitmodules` is checked from memory).
pub const KEEP_BLOB: usize = 64 << 10;

pub fn hex(oid: &Oid) -> String {
    oid.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_hex(b: &[u8]) -> Option<Oid> {
    if b.len() != 40 {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).filter(|_| !c.is_ascii_uppercase());
    let mut oid = [0u8; 20];
    for (i, o) in oid.iter_mut().enumerate() {
        *o = (d(b[2 * i])? * 16 + d(b[2 * i + 1])?) as u8;
    }
    Some(oid)
}

/// The objects the host's store had before the run: loose files, the pack
/// indexes (version 2, searched on disk) and the stores its `info/alternates`
/// names.
pub struct HostStore {
    dirs: Vec<OwnedFd>,
    idx: Vec<OwnedFd>,
}

impl HostStore {
    pub fn open(objects: BorrowedFd) -> HostStore {
        let mut store = HostStore {
            dirs: Vec::new(),
            idx: Vec::new(),
        };
        store.add(objects);
        if let Some(text) = super::read_at(objects, "info/alternates".as_ref(), 64 << 10) {
            for line in text.split(|c| *c == b'\n').take(16) {
                if line.starts_with(b"/") {
                    if let Ok(fd) = sys::open_no_symlinks(
                        &sys::cstr(std::ffi::OsStr::from_bytes(line)),
                        libc::O_RDONLY | libc::O_DIRECTORY,
                    ) {
                        store.add(fd.as_fd());
                    }
                }
            }
        }
        store
    }

    fn add(&mut self, objects: BorrowedFd) {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW;
        if let Ok(fd) = sys::openat(objects, c".", flags | libc::O_DIRECTORY) {
            self.dirs.push(fd);
        }
        if let Ok(pack) = sys::openat(objects, c"pack", flags | libc::O_DIRECTORY) {
            for name in super::names_in(pack.as_fd(), 4096) {
                if name.as_bytes().ends_with(b".idx") {
                    if let Ok(fd) = sys::openat(pack.as_fd(), &sys::cstr(&name), flags) {
                        self.idx.push(fd);
                    }
                }
            }
        }
    }

    pub fn has(&self, oid: &Oid) -> bool {
        let h = hex(oid);
        let loose = std::ffi::CString::new(format!("{}/{}", &h[..2], &h[2..])).expect("hex");
        self.dirs
            .iter()
            .any(|d| sys::openat(d.as_fd(), &loose, libc::O_PATH | libc::O_NOFOLLOW).is_ok())
            || self.idx.iter().any(|f| idx_has(f.as_fd(), oid))
    }
}

fn pread(fd: BorrowedFd, buf: &mut [u8], at: u64) -> bool {
    // SAFETY: valid fd, buffer of its length.
    let n = unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            at as libc::off_t,
        )
    };
    n == buf.len() as isize
}

/// gitformat-pack(5): a version 2 index is `\377tOc`, version 2, a fan-out of 256
/// counts, then the sorted object names.
fn idx_has(fd: BorrowedFd, oid: &Oid) -> bool {
    let mut head = [0u8; 8];
    if !pread(fd, &mut head, 0) || head != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return false;
    }
    let count = |i: usize| -> Option<u64> {
        let mut b = [0u8; 4];
        pread(fd, &mut b, 8 + 4 * i as u64).then(|| u32::from_be_bytes(b) as u64)
    };
    let first = oid[0] as usize;
    let (Some(mut lo), Some(mut hi)) = (
        if first == 0 {
            Some(0)
        } else {
            count(first - 1)
        },
        count(first),
    ) else {
        return false;
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let mut name = [0u8; 20];
        if !pread(fd, &mut name, 8 + 1024 + 20 * mid) {
            return false;
        }
        match name.cmp(oid) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    false
}

/// One entry of a tree object.
struct Entry<'a> {
    mode: &'a [u8],
    name: &'a [u8],
    oid: Oid,
}

fn tree_entries(body: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|c| *c == b' ')
            .ok_or("a tree entry without a mode")?;
        let nul = rest
            .iter()
            .position(|c| *c == 0)
            .filter(|n| *n > sp)
            .ok_or("a tree entry without a name")?;
        let oid: Oid = rest
            .get(nul + 1..nul + 21)
            .and_then(|b| b.try_into().ok())
            .ok_or("a tree entry cut short")?;
        out.push(Entry {
            mode: &rest[..sp],
            name: &rest[sp + 1..nul],
            oid,
        });
        rest = &rest[nul + 21..];
    }
    Ok(out)
}

/// git's tree order: names compared as if a directory's had a trailing `/`.
fn tree_key(e: &Entry) -> Vec<u8> {
    let mut k = e.name.to_vec();
    if e.mode == b"40000" {
        k.push(b'/');
    }
    k
}

/// The names git treats specially, which must not be symlinks (fsck.c).
fn special(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        &b".gitmodules"[..],
        b".gitattributes",
        b".gitignore",
        b".mailmap",
    ]
    .contains(&lower.as_slice())
}

/// Check a tree; returns the objects it names (gitlinks aside) and the
/// `.gitmodules` blobs among them.
fn check_tree(body: &[u8], submodules: bool) -> Result<(Vec<Oid>, Vec<Oid>), String> {
    let entries = tree_entries(body)?;
    let mut links = Vec::new();
    let mut gitmodules = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    for e in &entries {
        let shown = String::from_utf8_lossy(e.name);
        if e.name.is_empty()
            || e.name == b"."
            || e.name == b".."
            || e.name.contains(&b'/')
            || !crate::gitindex::path_is_safe(e.name, 0o100644)
        {
            return Err(format!(
                "a tree names {shown:?}, which git must not check out"
            ));
        }
        let key = tree_key(e);
        if last.as_ref().is_some_and(|l| *l >= key) {
            return Err(format!(
                "a tree's entries are out of order or repeated ({shown:?})"
            ));
        }
        last = Some(key);
        match e.mode {
            b"100644" | b"100755" | b"100664" | b"40000" => {}
            b"120000" if special(e.name) => {
                return Err(format!("a tree holds {shown:?} as a symlink"));
            }
            b"120000" => {}
            b"160000" if submodules => continue,
            b"160000" => {
                return Err(format!(
                    "a tree holds a submodule ({shown:?}) in a repository that had none"
                ));
            }
            m => {
                return Err(format!(
                    "a tree entry has the mode {:?}",
                    String::from_utf8_lossy(m)
                ))
            }
        }
        if e.name.eq_ignore_ascii_case(b".gitmodules") {
            gitmodules.push(e.oid);
        }
        links.push(e.oid);
    }
    Ok((links, gitmodules))
}

/// A `.gitmodules` git itself would refuse to act on (fsck.c, submodule-config.c).
pub fn check_gitmodules(text: &[u8]) -> Result<(), String> {
    for line in text.split(|c| *c == b'\n') {
        let l = String::from_utf8_lossy(line);
        let l = l.trim();
        if let Some(name) = l
            .strip_prefix("[submodule")
            .and_then(|r| r.trim_end().strip_suffix(']'))
        {
            let name = name.trim().trim_matches('"');
            if name.starts_with('/') || name.split(['/', '\\']).any(|c| c == "..") {
                return Err(format!(".gitmodules names a submodule {name:?}"));
            }
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().trim_matches('"');
        if (key == "path" || key == "url") && value.starts_with('-') {
            return Err(format!(".gitmodules sets {key} = {value:?}"));
        }
        if key == "update" && value.starts_with('!') {
            return Err(format!(".gitmodules sets update = {value:?}"));
        }
    }
    Ok(())
}

/// The objects `body` (of `kind`) points at.
fn commit_links(body: &[u8], kind: Kind) -> Result<Vec<Oid>, String> {
    let mut out = Vec::new();
    for line in body.split(|c| *c == b'\n') {
        if line.is_empty() {
            break; // the header ends
        }
        let key: &[u8] = match kind {
            Kind::Commit if line.starts_with(b"tree ") => b"tree ",
            Kind::Commit if line.starts_with(b"parent ") => b"parent ",
            Kind::Tag if line.starts_with(b"object ") => b"object ",
            _ => continue,
        };
        out.push(parse_hex(&line[key.len()..]).ok_or("a malformed object name")?);
    }
    if out.is_empty() {
        return Err(format!("a {kind:?} that names no object").to_lowercase());
    }
    Ok(out)
}

/// Decide which of `new` (the verified objects the sandbox wrote) may join the
/// host's store: each passes its own checks and everything it points at is either
/// accepted too or already on the host. Returns the refused ones with the reason.
pub fn judge(
    new: &BTreeMap<Oid, Object>,
    host: &HostStore,
    submodules: bool,
) -> BTreeMap<Oid, String> {
    let mut refused = BTreeMap::new();
    let mut links: BTreeMap<Oid, Vec<Oid>> = BTreeMap::new();
    let mut gitmodules: BTreeSet<Oid> = BTreeSet::new();
    for (oid, o) in new {
        let body = o.body.as_deref();
        let parsed = match (o.kind, body) {
            (Kind::Blob, _) => Ok(Vec::new()),
            (_, None) => Err("too large".to_string()),
            (Kind::Tree, Some(b)) => check_tree(b, submodules).map(|(l, g)| {
                gitmodules.extend(g);
                l
            }),
            (k, Some(b)) => commit_links(b, k),
        };
        match parsed {
            Ok(l) => {
                links.insert(*oid, l);
            }
            Err(why) => {
                refused.insert(*oid, why);
            }
        }
    }
    for g in &gitmodules {
        if let Some(o) = new.get(g) {
            let verdict = match &o.body {
                Some(text) => check_gitmodules(text),
                None => Err(".gitmodules too large to check".into()),
            };
            if let Err(why) = verdict {
                refused.insert(*g, why);
            }
        }
    }
    // Refusal spreads to whatever points at a refused or missing object.
    loop {
        let mut more = Vec::new();
        for (oid, l) in &links {
            if refused.contains_key(oid) {
                continue;
            }
            for t in l {
                if let Some(why) = refused.get(t) {
                    more.push((*oid, format!("points at {} ({why})", hex(t))));
                    break;
                }
                if !new.contains_key(t) && !host.has(t) {
                    more.push((*oid, format!("points at {}, which is missing", hex(t))));
                    break;
                }
            }
        }
        if more.is_empty() {
            return refused;
        }
        refused.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, &str, Oid)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (mode, name, oid) in entries {
            b.extend_from_slice(mode.as_bytes());
            b.push(b' ');
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(oid);
        }
        b
    }

    #[test]
    fn trees_git_must_not_check_out_are_refused() {
        let o = [7u8; 20];
        let ok = tree(&[
            ("100644", ".gitmodules", o),
            // git's order: a directory sorts as if its name ended in `/`.
            ("100644", "src.c", o),
            ("40000", "src", o),
        ]);
        let (links, gm) = check_tree(&ok, false).unwrap();
        assert_eq!((links.len(), gm.len()), (3, 1));
        for (bad, why) in [
            (tree(&[("40000", ".git", o)]), "must not check out"),
            (tree(&[("40000", ".GIT", o)]), "must not check out"),
            (tree(&[("40000", "git~1", o)]), "must not check out"),
            (tree(&[("40000", ".git\u{200c}", o)]), "must not check out"),
            (tree(&[("100644", "..", o)]), "must not check out"),
            (tree(&[("100644", "", o)]), "must not check out"),
            (tree(&[("100644", "a/b", o)]), "must not check out"),
            (tree(&[("120000", ".gitmodules", o)]), "as a symlink"),
            (tree(&[("120000", ".GitAttributes", o)]), "as a symlink"),
            (tree(&[("160000", "lib", o)]), "had none"),
            (tree(&[("100666", "x", o)]), "mode"),
            (tree(&[("100644", "b", o), ("100644", "a", o)]), "order"),
            (tree(&[("100644", "a", o), ("100644", "a", o)]), "order"),
        ] {
            let e = check_tree(&bad, false).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        // A gitlink where submodules were already used.
        assert!(check_tree(&tree(&[("160000", "lib", o)]), true).is_ok());
        // Cut short.
        assert!(check_tree(&ok[..ok.len() - 3], false).is_err());
    }

    #[test]
    fn gitmodules_git_would_refuse_are_refused() {
        assert!(
            check_gitmodules(b"[submodule \"lib\"]\n\tpath = lib\n\turl = https://x/y\n").is_ok()
        );
        for bad in [
            &b"[submodule \"../../hooks\"]\n\tpath = a\n"[..],
            b"[submodule \"/abs\"]\n",
            b"[submodule \"a\"]\n\tpath = -x\n",
            b"[submodule \"a\"]\n\turl = \"--upload-pack=touch /tmp/p\"\n",
            b"[submodule \"a\"]\n\tupdate = !sh -c id\n",
        ] {
            assert!(
                check_gitmodules(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refusal_spreads_to_what_points_at_a_refused_or_missing_object() {
        let store = HostStore {
            dirs: Vec::new(),
            idx: Vec::new(),
        };
        let bad_tree = [1u8; 20];
        let commit = [2u8; 20];
        let child = [3u8; 20];
        let good_tree = [4u8; 20];
        let orphan = [5u8; 20];
        let mut new = BTreeMap::new();
        new.insert(
            bad_tree,
            Object {
                kind: Kind::Tree,
                body: Some(tree(&[("40000", ".git", good_tree)])),
            },
        );
        new.insert(
            good_tree,
            Object {
                kind: Kind::Tree,
                body: Some(Vec::new()),
            },
        );
        let commit_to = |tree: &Oid, parent: Option<&Oid>| {
            let mut b = format!("tree {}\n", hex(tree));
            if let Some(p) = parent {
                b += &format!("parent {}\n", hex(p));
            }
            b += "author a <a> 0 +0000\n\nmsg\n";
            Some(b.into_bytes())
        };
        new.insert(
            commit,
            Object {
                kind: Kind::Commit,
                body: commit_to(&bad_tree, None),
            },
        );
        new.insert(
            child,
            Object {
                kind: Kind::Commit,
                body: commit_to(&good_tree, Some(&commit)),
            },
        );
        new.insert(
            orphan,
            Object {
                kind: Kind::Commit,
                body: commit_to(&[9u8; 20], None),
            },
        );
        let refused = judge(&new, &store, false);
        assert!(refused[&bad_tree].contains("must not check out"));
        assert!(refused[&commit].contains("points at"));
        assert!(refused[&child].contains("points at"));
        assert!(refused[&orphan].contains("missing"));
        assert!(!refused.contains_key(&good_tree));
    }
}

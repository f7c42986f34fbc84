//! The tree the launcher will build, played through before anything is made, so
//! that `--dry-run` refuses exactly the plans that cannot launch, with the message
//! the launch would give, naming the option or profile entry.
//!
//! It follows `mount.rs` step by step: every path is resolved as
//! `openat2(RESOLVE_IN_ROOT)` resolves it (symlinks followed, `..` stopping at the
//! root); a missing directory on the way is made where the directory holding it is
//! writable; a mount replaces what is at its destination and hides what was below;
//! a symlink is made only where nothing else is. What a bind shows is looked up on
//! the host, as the user (`HostFs`). Like bubblewrap, the ops run in order, covered
//! or not, so a plan bubblewrap refuses is refused here too.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Access, Mount, MountOp};
use crate::error::{Error, Result};
use crate::host::{Entry, HostFs};

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Dir,
    File,
    Link(PathBuf),
    /// A filesystem whose entries are not known here and where nothing can be made
    /// (proc, devpts, mqueue).
    Opaque,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// Nothing can be made inside (a read-only bind, a mask).
    ro: bool,
    /// The host directory whose entries this one shows (a bind, an overlay's lower).
    host: Option<PathBuf>,
    /// What put it there, for messages.
    what: String,
}

struct Tree<'a> {
    nodes: BTreeMap<PathBuf, Node>,
    /// Host directories made before the mounts (`create`).
    create: Vec<PathBuf>,
    /// Where each mount still standing was made, by the index of its op: what the
    /// sandbox will see (Landlock rules and the trust rule follow it).
    mounted: BTreeMap<PathBuf, usize>,
    /// The op being applied.
    current: usize,
    /// Ops that are tmp-overlays: what is made in them stays in the overlay.
    overlays: std::collections::BTreeSet<usize>,
    /// Entries made on the host during the launch (mount points in writable binds):
    /// a later bind of the same host directory shows them.
    made_on_host: BTreeMap<PathBuf, Kind>,
    fs: &'a dyn HostFs,
}

/// A host path the launcher makes before the mounts (`create`), or a parent of one.
fn to_be_made(create: &[PathBuf], hp: &Path) -> bool {
    create.iter().any(|c| c.starts_with(hp))
}

use super::trust::comps;

type Fail = String;

impl<'a> Tree<'a> {
    fn new(fs: &'a dyn HostFs) -> Tree<'a> {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            PathBuf::from("/"),
            Node {
                kind: Kind::Dir,
                ro: false,
                host: None,
                what: "the sandbox root".into(),
            },
        );
        Tree {
            nodes,
            create: Vec::new(),
            mounted: BTreeMap::new(),
            current: 0,
            overlays: Default::default(),
            made_on_host: BTreeMap::new(),
            fs,
        }
    }

    /// The entry at `p` (no symlink followed at `p` itself; `p` resolved already).
    fn lookup(&self, p: &Path) -> Option<Node> {
        if let Some(n) = self.nodes.get(p) {
            return Some(n.clone());
        }
        // The nearest known ancestor decides: a host directory shows its entries, a
        // fresh filesystem has none, an opaque one is unknown (taken as absent).
        let mut a = p.to_path_buf();
        while a.pop() {
            if let Some(n) = self.nodes.get(&a) {
                let host = n.host.as_ref()?;
                let rest = p.strip_prefix(&a).ok()?;
                let hp = host.join(rest);
                let kind = match self.made_on_host.get(&hp) {
                    Some(k) => k.clone(),
                    None => match self.fs.entry(&hp) {
                        Entry::Missing if to_be_made(&self.create, &hp) => Kind::Dir,
                        Entry::Dir => Kind::Dir,
                        Entry::File | Entry::Other => Kind::File,
                        Entry::Symlink(t) => Kind::Link(t),
                        Entry::Missing => return None,
                    },
                };
                return Some(Node {
                    host: (kind == Kind::Dir).then_some(hp),
                    kind,
                    ro: n.ro,
                    what: n.what.clone(),
                });
            }
        }
        None
    }

    /// Resolve `p` inside the root as RESOLVE_IN_ROOT does. Returns the resolved
    /// path and what is there (None: nothing).
    fn resolve(&self, p: &Path) -> std::result::Result<(PathBuf, Option<Node>), Fail> {
        let mut todo: Vec<OsString> = comps(p);
        todo.reverse();
        let mut cur = PathBuf::from("/");
        let mut links = 0;
        let mut last: Option<Node> = self.lookup(&cur);
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                last = self.lookup(&cur);
                continue;
            }
            match last.as_ref().map(|n| &n.kind) {
                Some(Kind::Dir) => {}
                Some(Kind::Opaque) => {
                    return Ok((
                        cur.join(&c).join(todo.iter().rev().collect::<PathBuf>()),
                        None,
                    ))
                }
                Some(_) => return Err(format!("{} is not a directory (ENOTDIR)", cur.display())),
                // Missing on the way: the whole path is missing (ensure_dir makes it).
                None => {
                    todo.push(c);
                    return Ok((cur.join(todo.iter().rev().collect::<PathBuf>()), None));
                }
            }
            let next = cur.join(&c);
            match self.lookup(&next) {
                Some(Node {
                    kind: Kind::Link(t),
                    ..
                }) => {
                    links += 1;
                    if links > 40 {
                        return Err(format!(
                            "{}: too many levels of symlinks (ELOOP)",
                            p.display()
                        ));
                    }
                    if t.is_absolute() {
                        cur = PathBuf::from("/");
                    }
                    let mut tc: Vec<OsString> = comps(&t);
                    tc.reverse();
                    todo.extend(tc);
                    last = self.lookup(&cur);
                }
                other => {
                    cur = next;
                    last = other;
                }
            }
        }
        Ok((cur, last))
    }

    /// `p`'s last component is a symlink (resolved or not).
    fn dangling(&self, p: &Path) -> std::result::Result<bool, Fail> {
        let (dir, _) = self.resolve(p.parent().unwrap_or(Path::new("/")))?;
        let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        Ok(matches!(
            self.lookup(&dir.join(name)),
            Some(Node {
                kind: Kind::Link(_),
                ..
            })
        ))
    }

    /// Hide everything known below `p` (a mount now covers it).
    fn cover(&mut self, p: &Path, node: Node) {
        let below: Vec<PathBuf> = self
            .nodes
            .range(p.to_path_buf()..)
            .take_while(|(k, _)| k.starts_with(p))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.nodes.remove(&k);
            self.mounted.remove(&k);
        }
        self.nodes.insert(p.to_path_buf(), node);
        self.mounted.insert(p.to_path_buf(), self.current);
    }

    /// Make entry `name` of directory `dir` (resolved): the directory must take it.
    fn make(
        &mut self,
        dir: &Path,
        name: &OsString,
        kind: Kind,
    ) -> std::result::Result<PathBuf, Fail> {
        let holder = self
            .lookup(dir)
            .ok_or_else(|| format!("{} does not exist (ENOENT)", dir.display()))?;
        let at = dir.join(name);
        match holder.kind {
            Kind::Dir if holder.ro => {
                return Err(format!(
                    "cannot create {}: {} is read-only there (EROFS)",
                    at.display(),
                    holder.what
                ))
            }
            Kind::Dir => {}
            Kind::Opaque => {
                return Err(format!(
                    "cannot create {}: nothing can be made in {}",
                    at.display(),
                    holder.what
                ))
            }
            _ => return Err(format!("{} is not a directory (ENOTDIR)", dir.display())),
        }
        // Made in a writable bind: on the host, where it stays, with the user's
        // rights there; made in an overlay: in its upper layer only.
        let in_overlay = self
            .mounted
            .iter()
            .filter(|(m, _)| dir.starts_with(m))
            .max_by_key(|(m, _)| m.components().count())
            .is_some_and(|(_, op)| self.overlays.contains(op));
        let host = match &holder.host {
            Some(h) if !in_overlay => {
                // (A directory this launch makes is the user's: writable.)
                if !self.made_on_host.contains_key(h) && !self.fs.access(h, libc::W_OK | libc::X_OK)
                {
                    return Err(format!(
                        "cannot create {}: {} is not writable by you on the host (EACCES)",
                        at.display(),
                        h.display()
                    ));
                }
                self.made_on_host.insert(h.join(name), kind.clone());
                (kind == Kind::Dir).then(|| h.join(name))
            }
            _ => None,
        };
        self.nodes.insert(
            at.clone(),
            Node {
                kind,
                ro: false,
                host,
                what: holder.what,
            },
        );
        Ok(at)
    }

    /// mount.rs `ensure_dir`: the resolved directory at `p`, made (with its parents)
    /// where missing.
    fn ensure_dir(&mut self, p: &Path) -> std::result::Result<PathBuf, Fail> {
        match self.resolve(p)? {
            (
                r,
                Some(Node {
                    kind: Kind::Dir | Kind::Opaque,
                    ..
                }),
            ) => Ok(r),
            (r, Some(_)) => Err(format!("{} is not a directory (ENOTDIR)", r.display())),
            (_, None) => {
                let parent = p.parent().unwrap_or(Path::new("/"));
                let name = p
                    .file_name()
                    .map(|n| n.to_os_string())
                    .ok_or_else(|| format!("{} cannot be made", p.display()))?;
                let dir = self.ensure_dir(parent)?;
                // A dangling symlink there: mkdirat answers EEXIST and the path still
                // leads nowhere.
                if let Some(Node {
                    kind: Kind::Link(t),
                    ..
                }) = self.lookup(&dir.join(&name))
                {
                    return Err(format!(
                        "{} is a symlink to {}, which does not exist (ENOENT)",
                        dir.join(&name).display(),
                        t.display()
                    ));
                }
                self.make(&dir, &name, Kind::Dir)
            }
        }
    }

    /// mount.rs `ensure_file`: what is at `p`, or an empty file made there (at the
    /// target of a symlink that leads nowhere).
    fn ensure_file(&mut self, p: &Path) -> std::result::Result<(PathBuf, Kind), Fail> {
        let mut p = p.to_path_buf();
        for _ in 0..40 {
            match self.resolve(&p)? {
                (r, Some(n)) => return Ok((r, n.kind)),
                (_, None) => {
                    let dir = self.ensure_dir(p.parent().unwrap_or(Path::new("/")))?;
                    let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                    match self.lookup(&dir.join(&name)) {
                        Some(Node {
                            kind: Kind::Link(t),
                            ..
                        }) => p = super::lexical_abs(t.as_os_str(), Some(&dir)),
                        _ => return Ok((self.make(&dir, &name, Kind::File)?, Kind::File)),
                    }
                }
            }
        }
        Err(format!(
            "{}: too many levels of symlinks (ELOOP)",
            p.display()
        ))
    }

    /// Apply one op; Ok(false) for a mask with nothing to hide.
    /// Play one op through; false: a mask with nothing to hide (skipped at launch).
    fn apply(&mut self, m: &Mount) -> std::result::Result<bool, Fail> {
        let what = |kind: &str| format!("the {kind} at {}", m.op.dst().display());
        let dir = |ro, host: Option<PathBuf>, what: String| Node {
            kind: Kind::Dir,
            ro,
            host,
            what,
        };
        match &m.op {
            MountOp::Bind { src, dst, access } => self.bind(src, dst, *access, &what)?,
            MountOp::Tmpfs { dst, .. } => {
                self.mount_dir(dst, dir(false, None, what("tmpfs")))?;
            }
            MountOp::Dev { dst, .. } => {
                let at = self.mount_dir(dst, dir(false, None, what("dev")))?;
                self.fill_dev(&at);
            }
            MountOp::TmpOverlay { src, dst, .. } => {
                self.overlays.insert(self.current);
                self.mount_dir(dst, dir(false, Some(src.clone()), what("overlay")))?;
            }
            // A proc of the sandbox's own: the host's /proc stands in for what is in it
            // (sys, self, …: the same names), and nothing can be made there.
            MountOp::Proc { dst, .. } => {
                self.mount_dir(dst, dir(true, Some("/proc".into()), what("proc")))?;
            }
            MountOp::Mqueue { dst } => {
                self.mount_dir(dst, opaque(&dst.display().to_string()))?;
            }
            // As bubblewrap's --dir: a symlink already there, even a dangling one, is
            // left as it is (mkdir answers EEXIST).
            MountOp::Dir { dst, .. } => {
                if !self.dangling(dst)? || matches!(self.resolve(dst), Ok((_, Some(_)))) {
                    self.ensure_dir(dst)?;
                }
            }
            MountOp::File { dst, .. } => self.file(dst, &what("file"))?,
            MountOp::Symlink { target, link } => self.symlink(target, link)?,
            MountOp::Mask { dst } => return Ok(self.mask(dst, &what("mask"))),
        }
        Ok(true)
    }

    /// A new filesystem (or a directory shown from elsewhere) mounted at `dst`.
    fn mount_dir(&mut self, dst: &Path, node: Node) -> std::result::Result<PathBuf, Fail> {
        let at = self.ensure_dir(dst)?;
        self.cover(&at, node);
        Ok(at)
    }

    fn bind(
        &mut self,
        src: &Path,
        dst: &Path,
        access: Access,
        what: &dyn Fn(&str) -> String,
    ) -> std::result::Result<(), Fail> {
        let ro = access == Access::ReadOnly;
        if self.fs.entry(src) == Entry::Dir || to_be_made(&self.create, src) {
            let node = Node {
                kind: Kind::Dir,
                ro,
                host: Some(src.to_path_buf()),
                what: what(if ro { "read-only bind" } else { "bind" }),
            };
            self.mount_dir(dst, node)?;
            return Ok(());
        }
        let (at, kind) = self.ensure_file(dst)?;
        if matches!(kind, Kind::Dir | Kind::Opaque) {
            return Err(format!(
                "{} is a directory: the file {} cannot be bound over it",
                at.display(),
                src.display()
            ));
        }
        let node = Node {
            kind: Kind::File,
            ro,
            host: None,
            what: what("bound file"),
        };
        self.cover(&at, node);
        Ok(())
    }

    /// What a `dev` op makes in its tmpfs (crate::mount's lists).
    fn fill_dev(&mut self, at: &Path) {
        for n in crate::mount::DEV_NODES {
            self.nodes.insert(at.join(n), file_node("/dev"));
        }
        for (target, name) in crate::mount::DEV_LINKS {
            let t = PathBuf::from(target.to_string_lossy().into_owned());
            let link = Node {
                kind: Kind::Link(t),
                ro: false,
                host: None,
                what: "/dev".into(),
            };
            self.nodes
                .insert(at.join(name.to_string_lossy().into_owned()), link);
        }
        self.nodes.insert(at.join("pts"), opaque("devpts"));
        let shm = Node {
            kind: Kind::Dir,
            ro: false,
            host: None,
            what: "/dev/shm".into(),
        };
        self.nodes.insert(at.join("shm"), shm);
    }

    fn file(&mut self, dst: &Path, what: &str) -> std::result::Result<(), Fail> {
        match self.resolve(dst)? {
            (
                r,
                Some(Node {
                    kind: Kind::Dir | Kind::Opaque,
                    ..
                }),
            ) => Err(format!("{}: a directory is there (EISDIR)", r.display())),
            (r, Some(_)) => {
                self.cover(&r, file_node(what));
                Ok(())
            }
            (_, None) => {
                let dir = self.ensure_dir(dst.parent().unwrap_or(Path::new("/")))?;
                let name = dst
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                if let Some(Node {
                    kind: Kind::Link(t),
                    ..
                }) = self.lookup(&dir.join(&name))
                {
                    return Err(format!(
                        "{} is a symlink to {}, which does not exist: the file cannot be made there",
                        dir.join(&name).display(),
                        t.display()
                    ));
                }
                self.make(&dir, &name, Kind::File).map(drop)
            }
        }
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> std::result::Result<(), Fail> {
        let dir = self.ensure_dir(link.parent().unwrap_or(Path::new("/")))?;
        let name = link
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        match self.lookup(&dir.join(&name)) {
            Some(Node {
                kind: Kind::Link(t),
                ..
            }) if t == target => Ok(()),
            Some(_) => Err(format!(
                "{} exists: the symlink cannot be made there (EEXIST)",
                dir.join(&name).display()
            )),
            None => self
                .make(&dir, &name, Kind::Link(target.to_path_buf()))
                .map(drop),
        }
    }

    /// Nothing there (or no way there: a file or a loop on the way): nothing to
    /// hide, as the launcher skips it (false).
    fn mask(&mut self, dst: &Path, what: &str) -> bool {
        let Ok((r, Some(n))) = self.resolve(dst) else {
            return false;
        };
        let kind = match n.kind {
            Kind::Dir | Kind::Opaque => Kind::Dir,
            _ => Kind::File,
        };
        let node = Node {
            kind,
            ro: true,
            host: None,
            what: what.to_string(),
        };
        self.cover(&r, node);
        true
    }
}

fn file_node(what: &str) -> Node {
    Node {
        kind: Kind::File,
        ro: false,
        host: None,
        what: what.into(),
    }
}

fn opaque(what: &str) -> Node {
    Node {
        kind: Kind::Opaque,
        ro: false,
        host: None,
        what: what.into(),
    }
}

/// Why a host path a writable bind shows stays within the sandbox's reach.
#[derive(Debug, PartialEq)]
pub enum Exposed {
    /// No later mount covers it.
    Uncovered,
    /// A symlink lies on the way to it inside the bind.
    Link,
    /// This directory (the one nearest the bind) could be renamed, taking the
    /// covering mount along, and a new one made in its place.
    Movable(PathBuf),
    /// The path cannot be looked up inside (a file on the way).
    Unreachable,
}

/// The tree once every op has run, and the masks that found nothing to hide.
pub struct Built<'a>(Tree<'a>, Vec<usize>);

impl Built<'_> {
    /// The indices of the ops whose mounts are still standing once all have run.
    pub fn standing(&self) -> std::collections::BTreeSet<usize> {
        self.0.mounted.values().copied().collect()
    }

    /// The indices of the masks with nothing to hide (the launch would skip them).
    pub fn idle_masks(&self) -> &[usize] {
        &self.1
    }

    /// Where the writable bind `j` (at `dst` inside) shows the host path that is at
    /// `inside` (below `dst`), and why the sandbox can still reach it there:
    /// `Ok(())` when a later mount hides it for the whole run, `Err` naming what
    /// leaves it writable. A later mount over it holds only if the sandbox can
    /// move nothing on the way: rename(2) refuses a mount point (EBUSY) but not a
    /// plain directory above one, and the mount moves with that directory, so
    /// every directory between `dst` and the covering mount must be a mount point
    /// itself, and no symlink (writable in the bind) may lie on the way.
    pub fn hidden_from(
        &self,
        j: usize,
        dst: &Path,
        inside: &Path,
    ) -> std::result::Result<(), Exposed> {
        let (Ok((rd, _)), Ok((r, _))) = (self.0.resolve(dst), self.0.resolve(inside)) else {
            return Err(Exposed::Unreachable);
        };
        let rest = inside.strip_prefix(dst).unwrap_or(Path::new(""));
        if r != rd.join(rest) {
            return Err(Exposed::Link);
        }
        // The innermost mount there: the bind itself (it stands at `rd`) unless a
        // later one covers the path.
        let at = match r
            .ancestors()
            .find_map(|a| self.0.mounted.get(a).map(|&k| (a, k)))
        {
            Some((at, k)) if k != j => at,
            _ => return Err(Exposed::Uncovered),
        };
        match at
            .ancestors()
            .skip(1)
            .take_while(|a| *a != rd)
            .filter(|a| !self.0.mounted.contains_key(*a))
            .last()
        {
            Some(movable) => Err(Exposed::Movable(movable.to_path_buf())),
            None => Ok(()),
        }
    }

    /// Something is at `p` (symlinks followed inside the root).
    pub fn exists(&self, p: &Path) -> bool {
        matches!(self.0.resolve(p), Ok((_, Some(_))))
    }

    /// A directory is at `p` (symlinks followed inside the root) that the user may
    /// enter, as chdir would find.
    pub fn is_dir(&self, p: &Path) -> bool {
        match self.0.resolve(p) {
            Ok((
                _,
                Some(Node {
                    kind: Kind::Dir,
                    host,
                    ..
                }),
            )) => host.is_none_or(|h| {
                // (A directory this launch makes is the user's: enterable.)
                self.0.made_on_host.contains_key(&h) || self.0.fs.access(&h, libc::X_OK)
            }),
            Ok((
                _,
                Some(Node {
                    kind: Kind::Opaque, ..
                }),
            )) => true,
            _ => false,
        }
    }
}

/// Play `mounts` through; the first op that would fail at launch is the error,
/// naming where it came from.
pub fn check<'a>(mounts: &[Mount], fs: &'a dyn HostFs, create: &[PathBuf]) -> Result<Built<'a>> {
    let mut t = Tree::new(fs);
    t.create = create.to_vec();
    let mut idle = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        t.current = i;
        let used = t
            .apply(m)
            .map_err(|why| Error::new(m.origin.clone(), format!("{}: {why}", m.op.describe())))?;
        if !used {
            idle.push(i);
        }
    }
    Ok(Built(t, idle))
}

//! Building the new root (README, "How a launch works"), run by PID 1 inside the new user, mount
//! and pid namespaces.
//!
//! 1. [`prepare`]: every mount is made detached first. Each bind source is opened
//!    with the effective capabilities cleared (so only the user's own rights resolve
//!    the path) and cloned into a detached tree (`open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)`)
//!    whose attributes are set in one `mount_setattr(AT_RECURSIVE)`: ro/nosuid/nodev
//!    reach every submount without a mountinfo walk (bwrap's O(N²), bubblewrap#384).
//!    Sources are taken before the new root covers anything, so paths under the host's
//!    /tmp work.
//! 2. [`build_root`]: a size-limited tmpfs becomes the root; each op is applied in
//!    order. Every path inside it is resolved from the root's fd with
//!    `openat2(RESOLVE_IN_ROOT)`, and mounts are attached to the resolved fd with
//!    `move_mount`: no string path is ever followed out of the new root
//!    (CVE-2026-87766 in bubblewrap was exactly that).
//! 3. [`pivot`]: `pivot_root(".", ".")`, then [`detach_old_root`]: a lazy detach of the
//!    old root, so nothing of the setup (no old root, no staging directory) is left
//!    visible.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::error::Result;
use crate::plan::{MountOp, Plan};
use crate::sys::{self, SysError, SysResult};
use crate::{caps, trace};

const ATTR_RO: u64 = libc::MOUNT_ATTR_RDONLY;
const ATTR_NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
const ATTR_NODEV: u64 = libc::MOUNT_ATTR_NODEV;
const ATTR_NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;

/// Device nodes of the minimal /dev, bound from the host's.
pub const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
pub const DEV_LINKS: [(&CStr, &CStr); 5] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
    (c"pts/ptmx", c"ptmx"),
];

/// Entries of a sandbox's /proc that describe the host rather than the sandbox, each
/// covered by an empty read-only file or directory (Docker's and Podman's masked
/// paths): `/proc/keys` and `key-users` list the descriptions of every key the uid
/// may view, across user namespaces; `kcore` is the kernel's memory; the timer,
/// scheduler and latency tables, `interrupts`, `acpi`, `asound` and `scsi` describe
/// the host's hardware and what runs on it. Absent entries are skipped.
pub const PROC_HIDDEN: [&str; 12] = [
    "keys",
    "key-users",
    "kcore",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
    "interrupts",
    "sysrq-trigger",
    "acpi",
    "asound",
    "scsi",
];

/// Where the new root is attached while it is built: inside this mount namespace
/// only, and covered by the pivot afterwards.
const STAGING: &CStr = c"/tmp";

/// What an op mounts, made detached before the id maps exist (see [`prepare`]).
enum Made {
    Nothing,
    /// The lower directory of a tmp-overlay, opened with the user's rights.
    Lower(OwnedFd),
    /// A clone of a bind source, attributes set.
    Tree(OwnedFd),
    /// A new filesystem instance (tmpfs, proc).
    Fs(OwnedFd),
    /// A `file` op's content, ready to be mounted over an existing file.
    Data(OwnedFd),
    Dev {
        dev: OwnedFd,
        pts: OwnedFd,
        shm: OwnedFd,
        nodes: Vec<OwnedFd>,
    },
}

/// Every mount of the plan, detached: the root tmpfs and one [`Made`] per op.
pub struct Detached {
    root: OwnedFd,
    ops: Vec<Made>,
}

fn dev_paths() -> impl Iterator<Item = CString> {
    DEV_NODES
        .iter()
        .map(|n| CString::new(format!("/dev/{n}")).unwrap())
}

/// Create every mount of the plan, detached, while newuidmap/newgidmap still run:
/// none of this needs the ids mapped (only creating inodes does), so it comes off the
/// launch's critical path. Bind sources are taken here, before the new root covers
/// anything, so paths under the host's /tmp work.
pub fn prepare(plan: &Plan) -> Result<Detached> {
    let mounts = &plan.mounts;
    // Path lookups with the user's rights only: O_PATH opens need search permission on
    // every directory on the way, and CAP_DAC_* would otherwise bypass that for ids
    // mapped into the namespace.
    let opened: Vec<Vec<SysResult<OwnedFd>>> = caps::with_effective_cleared(|| {
        mounts
            .iter()
            .map(|m| match &m.op {
                MountOp::Bind { src, .. } | MountOp::TmpOverlay { src, .. } => {
                    vec![sys::open_no_symlinks(
                        &sys::cstr(src.as_os_str()),
                        libc::O_PATH,
                    )]
                }
                MountOp::Dev { .. } => dev_paths().map(|p| sys::open(&p, libc::O_PATH)).collect(),
                MountOp::Tmpfs { .. }
                | MountOp::Dir { .. }
                | MountOp::Symlink { .. }
                | MountOp::Proc { .. }
                | MountOp::File { .. }
                | MountOp::Mqueue { .. }
                | MountOp::Mask { .. } => Vec::new(),
            })
            .collect()
    })?;
    let mut ops = Vec::with_capacity(mounts.len());
    for (m, fds) in mounts.iter().zip(opened) {
        let made = prepare_op(&m.op, fds).map_err(|e| {
            e.at(format!("prepare {}", m.op.describe()))
                .within(&m.origin)
        })?;
        ops.push(made);
    }
    let root =
        tmpfs(plan.root_size, 0o755, ATTR_NOSUID | ATTR_NODEV).map_err(|e| e.at("new root"))?;
    Ok(Detached { root, ops })
}

fn prepare_op(op: &MountOp, fds: Vec<SysResult<OwnedFd>>) -> SysResult<Made> {
    Ok(match op {
        MountOp::Bind { src, access, .. } => {
            let what = src.to_string_lossy();
            let path = fds.into_iter().next().expect("one source per bind")?;
            let tree = sys::clone_tree(path.as_fd(), &what)?;
            sys::mount_setattr(tree.as_fd(), true, access.attrs(), 0, &what)?;
            trace::step("init", || {
                format!("took {what} ({})", sys::attr_names(access.attrs()))
            });
            Made::Tree(tree)
        }
        MountOp::Tmpfs { size, mode, .. } => {
            Made::Fs(tmpfs(*size, *mode, ATTR_NOSUID | ATTR_NODEV)?)
        }
        // A procfs of the sandbox's own pid namespace (this process is its PID 1).
        MountOp::Proc { .. } => Made::Fs(sys::new_fs(
            c"proc",
            &[],
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
        )?),
        MountOp::Dev { shm_size, .. } => {
            let mut nodes = Vec::with_capacity(DEV_NODES.len());
            for (name, fd) in DEV_NODES.iter().zip(fds) {
                nodes.push(sys::clone_tree(fd?.as_fd(), name)?);
            }
            Made::Dev {
                dev: tmpfs(1024 * 1024, 0o755, ATTR_NOSUID | ATTR_NOEXEC)?,
                // A new devpts instance: the sandbox's ptys are its own, and it cannot
                // reach the host's (ptmxmode lets the unprivileged user open ptmx).
                pts: sys::new_fs(
                    c"devpts",
                    &[
                        (c"newinstance", None),
                        (c"ptmxmode", Some(c"0666")),
                        (c"mode", Some(c"0620")),
                    ],
                    ATTR_NOSUID | ATTR_NOEXEC,
                )?,
                shm: tmpfs(*shm_size, 0o1777, ATTR_NOSUID | ATTR_NODEV)?,
                nodes,
            }
        }
        MountOp::Mqueue { .. } => Made::Fs(sys::new_fs(
            c"mqueue",
            &[],
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
        )?),
        MountOp::TmpOverlay { .. } => {
            Made::Lower(fds.into_iter().next().expect("one lower directory")?)
        }
        MountOp::Dir { .. }
        | MountOp::Symlink { .. }
        | MountOp::File { .. }
        | MountOp::Mask { .. } => Made::Nothing,
    })
}

/// The empty directory and empty file that masks are cloned from. They live on a
/// small read-only tmpfs attached at [`STAGING`] *under* the new root, so they are
/// reachable through their fds while the root is built and gone with the old root.
struct MaskSource {
    dir: OwnedFd,
    file: OwnedFd,
}

impl MaskSource {
    fn new() -> SysResult<MaskSource> {
        let fs = tmpfs(64 * 1024, 0o755, ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)?;
        sys::move_mount_path(fs.as_fd(), STAGING)?;
        sys::mkdirat(fs.as_fd(), c"dir", 0o555)?;
        sys::mknod_file_at(fs.as_fd(), c"file", 0o444)?;
        let dir = sys::openat(
            fs.as_fd(),
            c"dir",
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )?;
        let file = sys::openat(fs.as_fd(), c"file", libc::O_PATH | libc::O_NOFOLLOW)?;
        sys::mount_setattr(fs.as_fd(), false, ATTR_RO, 0, "mask source")?;
        Ok(MaskSource { dir, file })
    }

    /// Cover what is at `dst`, if anything: an empty read-only directory over a
    /// directory, an empty read-only file over anything else.
    fn cover(&self, root: BorrowedFd, dst: &Path) -> SysResult<()> {
        let target = match sys::open_in_root(root, &rel(dst), libc::O_PATH) {
            // Nothing there, or no way there (a file or a symlink loop on the way).
            Err(e) if matches!(e.errno, libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => {
                trace::step("init", || format!("mask {}: nothing there", dst.display()));
                return Ok(());
            }
            other => other?,
        };
        let is_dir = sys::fstat(target.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let src = if is_dir { &self.dir } else { &self.file };
        mount_over(src.as_fd(), target.as_fd(), dst)
    }
}

/// Bind `src` read-only (nosuid, nodev, noexec) over `target`.
/// The sources (the mask source, a `file`'s data) are made read-only, nosuid, nodev
/// and noexec once: a clone keeps its source's mount flags (clone_mnt copies
/// mnt_flags), so no mount_setattr per cover.
fn mount_over(src: BorrowedFd, target: BorrowedFd, dst: &Path) -> SysResult<()> {
    let what = dst.to_string_lossy();
    let tree = sys::clone_tree(src, &what)?;
    sys::move_mount_fd(tree.as_fd(), target, &what)
}

/// An overlay of `lower` with its upper and work directories on a new tmpfs, attached
/// at [`STAGING`] under the new root while the overlay is configured by path (overlayfs
/// takes directories by name); all of it goes with the old root, and with the sandbox.
fn make_overlay(lower: &OwnedFd, size: u64) -> SysResult<OwnedFd> {
    let upper = tmpfs(size, 0o755, ATTR_NOSUID | ATTR_NODEV)?;
    sys::move_mount_path(upper.as_fd(), STAGING)?;
    sys::mkdirat(upper.as_fd(), c"upper", 0o755)?;
    sys::mkdirat(upper.as_fd(), c"work", 0o700)?;
    let fd_path = |fd: &OwnedFd, rest: &str| {
        CString::new(format!(
            "/proc/self/fd/{}{rest}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
        .unwrap()
    };
    let (l, u, w) = (
        fd_path(lower, ""),
        fd_path(&upper, "/upper"),
        fd_path(&upper, "/work"),
    );
    // userxattr: an overlay inside a user namespace keeps its metadata in user.*
    // xattrs (it may not write trusted.*).
    sys::new_fs(
        c"overlay",
        &[
            (c"lowerdir", Some(&l)),
            (c"upperdir", Some(&u)),
            (c"workdir", Some(&w)),
            (c"userxattr", None),
        ],
        ATTR_NOSUID | ATTR_NODEV,
    )
}

/// Create `dst` below `root` holding `content`. An existing file (say /etc/hosts in a
/// read-only /etc) is not changed: `data`, a read-only file of its own holding the
/// same content, is mounted over it.
fn write_file(
    root: BorrowedFd,
    dst: &Path,
    content: &[u8],
    mode: u32,
    data: OwnedFd,
) -> SysResult<()> {
    match sys::open_in_root(root, &rel(dst), libc::O_PATH) {
        Ok(target) => {
            if sys::fstat(target.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(SysError {
                    call: format!("file {}: a directory is there", dst.display()),
                    errno: libc::EISDIR,
                });
            }
            return mount_over(data.as_fd(), target.as_fd(), dst);
        }
        Err(e) if e.errno == libc::ENOENT => {}
        Err(e) => return Err(e),
    }
    let parent = ensure_dir(root, dst.parent().unwrap_or(Path::new("/")), 0o755)?;
    let fd = sys::create_file_with(parent.as_fd(), &name_of(dst), mode)?;
    sys::write_all(std::os::fd::AsRawFd::as_raw_fd(&fd), content)
}

/// A small read-only tmpfs holding one file with `content`, for a `file` op that may
/// land on an existing file. Staged at [`STAGING`] before the new root is attached
/// there (so it stays under the root and goes with the old root): a mount stacked
/// over the new root would make the sandbox look chrooted to the kernel, which then
/// refuses nested user namespaces (user_namespaces(7), EPERM).
fn make_data(content: &[u8], mode: u32) -> SysResult<OwnedFd> {
    let size = (content.len() as u64).div_ceil(4096) * 4096 + 4096;
    let fs = tmpfs(size, 0o755, ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)?;
    sys::move_mount_path(fs.as_fd(), STAGING)?;
    let f = sys::create_file_with(fs.as_fd(), c"data", mode)?;
    sys::write_all(std::os::fd::AsRawFd::as_raw_fd(&f), content)?;
    drop(f);
    let data = sys::openat(fs.as_fd(), c"data", libc::O_PATH | libc::O_NOFOLLOW)?;
    sys::mount_setattr(fs.as_fd(), false, ATTR_RO, 0, "file data")?;
    Ok(data)
}

/// Relative form of an absolute sandbox path, for `openat2` below the root fd.
fn rel(p: &Path) -> CString {
    let s = p.as_os_str().as_bytes();
    let s = s.strip_prefix(b"/").unwrap_or(s);
    if s.is_empty() {
        c".".into()
    } else {
        CString::new(s).expect("plan rejects NUL bytes")
    }
}

fn name_of(p: &Path) -> CString {
    CString::new(p.file_name().map(|n| n.as_bytes()).unwrap_or(b"."))
        .expect("plan rejects NUL bytes")
}

/// Run `f` on the directory that holds `p` below `root` (made as needed): the root's
/// own fd for a top-level entry, with no lookup and no descriptor to open and close.
fn in_parent<R>(
    root: BorrowedFd,
    p: &Path,
    f: impl FnOnce(BorrowedFd) -> SysResult<R>,
) -> SysResult<R> {
    match p.parent() {
        None => f(root),
        Some(parent) if parent == Path::new("/") => f(root),
        Some(parent) => f(ensure_dir(root, parent, 0o755)?.as_fd()),
    }
}

/// Open directory `p` below `root`, creating it and its parents (mode `mode`) as needed.
fn ensure_dir(root: BorrowedFd, p: &Path, mode: u32) -> SysResult<OwnedFd> {
    match sys::open_in_root(root, &rel(p), libc::O_PATH | libc::O_DIRECTORY) {
        Err(e) if e.errno == libc::ENOENT && p.parent().is_some() => {
            match in_parent(root, p, |dir| sys::mkdirat(dir, &name_of(p), mode)) {
                Err(e) if e.errno != libc::EEXIST => return Err(e),
                _ => {}
            }
            sys::open_in_root(root, &rel(p), libc::O_PATH | libc::O_DIRECTORY)
        }
        other => other,
    }
}

/// Open file `p` below `root` as a mount point, creating an empty one if needed.
/// A symlink at `p` that leads nowhere is followed to where it points (inside the
/// root), and the file made there, as bubblewrap's open(O_CREAT) does.
fn ensure_file(root: BorrowedFd, p: &Path) -> SysResult<OwnedFd> {
    let mut p = p.to_path_buf();
    for _ in 0..40 {
        match sys::open_in_root(root, &rel(&p), libc::O_PATH) {
            Err(e) if e.errno == libc::ENOENT => {
                match in_parent(root, &p, |dir| sys::mknod_file_at(dir, &name_of(&p), 0o444)) {
                    Err(e) if e.errno != libc::EEXIST => return Err(e),
                    _ => {}
                }
                match sys::open_in_root(root, &rel(&p), libc::O_PATH) {
                    Err(e) if e.errno == libc::ENOENT => {
                        let link =
                            in_parent(root, &p, |dir| Ok(sys::readlinkat(dir, &name_of(&p))))?;
                        let Some(target) = link else { return Err(e) };
                        let target = std::ffi::OsString::from_vec(target);
                        p = crate::plan::lexical_abs(&target, p.parent());
                    }
                    other => return other,
                }
            }
            other => return other,
        }
    }
    Err(SysError {
        call: format!("{}: too many levels of symlinks", p.display()),
        errno: libc::ELOOP,
    })
}

fn symlink(root: BorrowedFd, target: &CStr, link: &Path) -> SysResult<()> {
    let name = name_of(link);
    in_parent(root, link, |dir| match sys::symlinkat(target, dir, &name) {
        // Idempotent when the same link is already there (bwrap does the same).
        Err(e) if e.errno == libc::EEXIST => match sys::readlinkat(dir, &name) {
            Some(t) if t == target.to_bytes() => Ok(()),
            _ => Err(e),
        },
        other => other,
    })
}

fn size_opt(size: u64) -> CString {
    CString::new(size.to_string()).unwrap()
}

fn tmpfs(size: u64, mode: u32, attrs: u64) -> SysResult<OwnedFd> {
    let mode = CString::new(format!("{mode:o}")).unwrap();
    sys::new_fs(
        c"tmpfs",
        &[(c"size", Some(&size_opt(size))), (c"mode", Some(&mode))],
        attrs,
    )
}

/// Mount a fresh filesystem (detached `fs`) at directory `dst` below `root`.
fn attach_dir(root: BorrowedFd, fs: &OwnedFd, dst: &Path) -> SysResult<()> {
    let target = ensure_dir(root, dst, 0o755)?;
    sys::move_mount_fd(fs.as_fd(), target.as_fd(), &dst.to_string_lossy())
}

fn build_dev(root: BorrowedFd, dst: &Path, made: Made) -> SysResult<()> {
    let Made::Dev {
        dev,
        pts,
        shm,
        nodes,
    } = made
    else {
        unreachable!("dev op prepared as Dev")
    };
    attach_dir(root, &dev, dst)?;
    // Every name below is one component in this fresh tmpfs, created here: mknodat and
    // mkdirat fail on anything already there, so no lookup can leave it.
    let d = dev.as_fd();
    for (name, node) in DEV_NODES.iter().zip(&nodes) {
        let cname = CString::new(*name).unwrap();
        sys::mknod_file_at(d, &cname, 0o444)?;
        sys::move_mount_to(node.as_fd(), d, &cname, &format!("/dev/{name}"))?;
    }
    for (target, name) in DEV_LINKS {
        sys::symlinkat(target, d, name)?;
    }
    sys::mkdirat(d, c"pts", 0o755)?;
    sys::move_mount_to(pts.as_fd(), d, c"pts", "/dev/pts")?;
    // Device nodes must stay usable: nosuid and noexec over all of /dev, never nodev,
    // in one call (the nodes' host mounts may lack them); /dev/shm comes after, as
    // its own nosuid,nodev tmpfs.
    sys::mount_setattr(d, true, ATTR_NOSUID | ATTR_NOEXEC, 0, "/dev")?;
    sys::mkdirat(d, c"shm", 0o1777)?;
    sys::move_mount_to(shm.as_fd(), d, c"shm", "/dev/shm")?;
    Ok(())
}

impl Made {
    /// What `prepare_op` made for a bind or a filesystem: the mount to attach.
    fn mount(self) -> OwnedFd {
        match self {
            Made::Tree(fd) | Made::Fs(fd) | Made::Data(fd) => fd,
            _ => unreachable!("each op is prepared as its own kind"),
        }
    }
}

fn apply(root: BorrowedFd, op: &MountOp, made: Made, masks: Option<&MaskSource>) -> SysResult<()> {
    match op {
        MountOp::Mask { dst } => masks.expect("mask source made for masks").cover(root, dst),
        MountOp::Bind { dst, .. } => {
            let tree = made.mount();
            let is_dir = sys::fstat(tree.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let target = if is_dir {
                ensure_dir(root, dst, 0o755)?
            } else {
                ensure_file(root, dst)?
            };
            sys::move_mount_fd(tree.as_fd(), target.as_fd(), &dst.to_string_lossy())
        }
        MountOp::Proc { dst, hide_host } => {
            attach_dir(root, &made.mount(), dst)?;
            if !hide_host {
                return Ok(());
            }
            let masks = masks.expect("mask source made for proc");
            PROC_HIDDEN
                .iter()
                .try_for_each(|name| masks.cover(root, &dst.join(name)))
        }
        MountOp::Tmpfs { dst, .. } | MountOp::Mqueue { dst } | MountOp::TmpOverlay { dst, .. } => {
            attach_dir(root, &made.mount(), dst)
        }
        MountOp::File { dst, content, mode } => write_file(root, dst, content, *mode, made.mount()),
        // As bubblewrap's --dir: a symlink already there, even a dangling one, stays.
        MountOp::Dir { dst, mode } => match ensure_dir(root, dst, *mode) {
            Err(e) if e.errno == libc::ENOENT || e.errno == libc::ELOOP => {
                let link = in_parent(root, dst, |dir| Ok(sys::readlinkat(dir, &name_of(dst))))?;
                link.map(drop).ok_or(e)
            }
            other => other.map(drop),
        },
        MountOp::Symlink { target, link } => symlink(root, &sys::cstr(target.as_os_str()), link),
        MountOp::Dev { dst, .. } => build_dev(root, dst, made),
    }
}

/// What can only be made once the ids are mapped (it creates inodes): a
/// tmp-overlay's upper layer, a file's content.
fn made_now(op: &MountOp, made: Made) -> SysResult<Made> {
    match (op, made) {
        (MountOp::TmpOverlay { size, .. }, Made::Lower(lower)) => {
            make_overlay(&lower, *size).map(Made::Fs)
        }
        (MountOp::File { content, mode, .. }, _) => make_data(content, *mode).map(Made::Data),
        (
            MountOp::Bind { .. }
            | MountOp::Tmpfs { .. }
            | MountOp::Dir { .. }
            | MountOp::Symlink { .. }
            | MountOp::Proc { .. }
            | MountOp::Dev { .. }
            | MountOp::Mqueue { .. }
            | MountOp::Mask { .. }
            | MountOp::TmpOverlay { .. },
            made,
        ) => Ok(made),
    }
}

/// Attach the root at [`STAGING`], apply every op in order inside it, and return its
/// directory fd. Needs the id maps written.
pub fn build_root(plan: &Plan, detached: Detached) -> Result<OwnedFd> {
    let step = "new root";
    let Detached { root, ops } = detached;
    let masks = match plan
        .mounts
        .iter()
        .any(|m| matches!(m.op, MountOp::Mask { .. } | MountOp::Proc { .. }))
    {
        true => Some(MaskSource::new().map_err(|e| e.at("mask source"))?),
        false => None,
    };
    let ops = plan
        .mounts
        .iter()
        .zip(ops)
        .map(|(m, made)| made_now(&m.op, made).map_err(|e| e.at(m.op.describe()).within(&m.origin)))
        .collect::<Result<Vec<Made>>>()?;
    sys::move_mount_path(root.as_fd(), STAGING).map_err(|e| e.at(step))?;
    for (m, made) in plan.mounts.iter().zip(ops) {
        trace::step("init", || m.op.describe());
        apply(root.as_fd(), &m.op, made, masks.as_ref())
            .map_err(|e: SysError| e.at(m.op.describe()).within(&m.origin))?;
    }
    // Nothing may be added to /dev itself once the ops are done (a later op, such as
    // an mqueue at /dev/mqueue, may still add a mount point).
    for m in &plan.mounts {
        if let MountOp::Dev { dst, .. } = &m.op {
            sys::open_in_root(root.as_fd(), &rel(dst), libc::O_PATH | libc::O_DIRECTORY)
                .and_then(|fd| {
                    sys::mount_setattr(fd.as_fd(), false, ATTR_RO, 0, &dst.to_string_lossy())
                })
                .map_err(|e| e.at(m.op.describe()).within(&m.origin))?;
        }
    }
    // Keep host mount events out: nothing propagates into (or out of) the sandbox's
    // tree after this, so a mount the host adds later cannot appear writable inside a
    // read-only bind (mount_namespaces(7)).
    sys::mount_setattr(root.as_fd(), true, 0, libc::MS_PRIVATE, "/").map_err(|e| e.at(step))?;
    // The root itself holds only mount points: read-only.
    sys::mount_setattr(root.as_fd(), false, ATTR_RO, 0, "/").map_err(|e| e.at(step))?;
    Ok(root)
}

/// Make `root` the root: `pivot_root(".", ".")` stacks the old root on top of the new
/// one, and the lazy unmount of "." ([`detach_old_root`]) removes it, so neither the
/// host's tree nor a staging directory stays reachable (the runc/LXC idiom;
/// pivot_root(2) NOTES).
pub fn pivot(root: &OwnedFd) -> Result<()> {
    let step = "pivot_root";
    sys::fchdir(root.as_fd()).map_err(|e| e.at(step))?;
    sys::pivot_root_here().map_err(|e| e.at(step))
}

/// Detach the old root, which [`pivot`] left stacked on top of the new one (and under
/// our cwd). Until then no process of the sandbox may walk a path: a `..` that
/// reaches the root steps onto whatever is mounted on it (path_resolution(7); the
/// kernel follows mounts after `..`), and that is the host's tree. The command's
/// process prepares what needs no path meanwhile, and waits. The detach ends in an
/// expedited RCU grace period (~0.1 ms here).
pub fn detach_old_root() -> Result<()> {
    sys::umount_detach(c".").map_err(|e| e.at("detach old root"))?;
    sys::chdir(c"/").map_err(|e| e.at("pivot_root"))
}

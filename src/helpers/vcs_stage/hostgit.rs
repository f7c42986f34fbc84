//! The host's git, asked to check and take what a staged run left: the launcher
//! copies the staging directory's refs, HEAD and loose objects into a private
//! directory of the repository (a plain repository of data: its config is sbx's,
//! it has no hooks), then `git fetch` reads the new objects from it with
//! `transfer.fsckObjects` (every object parsed as git parses it, every tree and
//! `.gitmodules` checked by fsck, the history complete: a pack that fails is not
//! kept) and `git update-ref` moves each ref with its old value (git checks the
//! name, that a branch names a commit, and writes the reflog). Whatever git
//! refuses does not land, and git's own words say why.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{names_in, read_at};
use crate::sys;

/// The most the launcher copies out of the staging directory: loose objects in
/// all, entries under refs.
const MAX_OBJECT_BYTES: u64 = 2 << 30;
const MAX_REF_ENTRIES: usize = 4 * crate::plan::vcs::MAX_REFS;

/// The repository git works on, the host's git, and when all its work on this run
/// must be done (a sandbox could leave a great deal for it to check): a command
/// still running then is killed.
pub struct Git<'a> {
    pub git: &'a Path,
    pub gitdir: &'a Path,
    pub deadline: Instant,
}

impl Git<'_> {
    /// Run git on the host's repository with `args` (and `stdin`); Ok: its
    /// standard output; Err: its standard error (or why it did not run). The
    /// environment's GIT_* variables are left out: the repository is named here.
    pub fn run(&self, args: &[&OsStr], stdin: &[u8]) -> Result<Vec<u8>, String> {
        if Instant::now() >= self.deadline {
            return Err("out of time: the host's git already worked 2 minutes on this run".into());
        }
        let mut c = Command::new(self.git);
        c.arg("--git-dir")
            .arg(self.gitdir)
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0");
        for (k, _) in std::env::vars_os() {
            if k.as_bytes().starts_with(b"GIT_") && k != "GIT_TERMINAL_PROMPT" {
                c.env_remove(k);
            }
        }
        let mut child = c
            .spawn()
            .map_err(|e| format!("{}: {e}", self.git.display()))?;
        let pid = child.id() as libc::pid_t;
        let pidfd = sys::pidfd_open(pid).map_err(|e| e.to_string());
        if let Some(mut input) = child.stdin.take() {
            let data = stdin.to_vec();
            std::thread::spawn(move || input.write_all(&data));
        }
        let waiter = std::thread::spawn(move || child.wait_with_output());
        let ended = pidfd.as_ref().map(|fd| {
            sys::poll_readable(&[fd.as_fd()], Some(self.deadline))
                .map(|r| r[0])
                .unwrap_or(true)
        });
        if ended == Ok(false) {
            sys::kill(pid, libc::SIGKILL);
        }
        let out = waiter
            .join()
            .map_err(|_| "git: the waiting thread failed".to_string())?
            .map_err(|e| e.to_string())?;
        if ended == Ok(false) {
            return Err("git ran out of time (2 minutes in all): killed".into());
        }
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Git<'_> {
    /// What a killed `git fetch` leaves in the pack directory (`tmp_pack_*`,
    /// `tmp_idx_*`), made since `since`.
    fn remove_partial_packs(&self, since: std::time::SystemTime) {
        let pack = self.gitdir.join("objects/pack");
        for e in std::fs::read_dir(&pack).into_iter().flatten().flatten() {
            let name = e.file_name();
            let partial = name.as_bytes().starts_with(b"tmp_pack_")
                || name.as_bytes().starts_with(b"tmp_idx_");
            let new = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if partial && new {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A private copy of what the sandbox left, as a repository git can read, removed
/// when dropped.
pub struct Export {
    pub path: PathBuf,
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copy HEAD, packed-refs, the refs and the loose objects of `staging` into a new
/// directory of the host's git directory (`real`, at `gitdir`), each a regular file
/// read without following a symlink; objects found through the host's store.
pub fn export(staging: BorrowedFd, real: BorrowedFd, gitdir: &Path) -> Result<Export, String> {
    let name = format!("sbx-stage-{}", std::process::id());
    remove_stale_exports(gitdir);
    let _ = std::fs::remove_dir_all(gitdir.join(&name));
    sys::mkdirat(real, &sys::cstr(name.as_ref()), 0o700).map_err(|e| e.to_string())?;
    let out = Export {
        path: gitdir.join(&name),
    };
    let dir = open_dir_at(real, name.as_ref()).ok_or("cannot open the export directory")?;
    let file = |name: &str, data: &[u8]| write_new(dir.as_fd(), name.as_ref(), data);
    file(
        "config",
        b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n",
    )?;
    for name in ["HEAD", "packed-refs"] {
        if let Some(data) = read_at(staging, name.as_ref(), super::MAX_FILE) {
            file(name, &data)?;
        }
    }
    let mut budget = MAX_REF_ENTRIES;
    copy_tree(staging, dir.as_fd(), "refs".as_ref(), 4096, &mut budget)?;
    sys::mkdirat(dir.as_fd(), c"objects", 0o700).map_err(|e| e.to_string())?;
    let objects = open_dir_at(dir.as_fd(), "objects".as_ref()).ok_or("objects")?;
    sys::mkdirat(objects.as_fd(), c"info", 0o700).map_err(|e| e.to_string())?;
    let info = open_dir_at(objects.as_fd(), "info".as_ref()).ok_or("objects/info")?;
    let mut alternates = gitdir.join("objects").into_os_string().into_vec();
    alternates.push(b'\n');
    write_new(info.as_fd(), "alternates".as_ref(), &alternates)?;
    copy_objects(staging, objects.as_fd())?;
    Ok(out)
}

use std::os::unix::ffi::OsStringExt;

/// The exports of launchers that are gone (killed while the host's git worked).
fn remove_stale_exports(gitdir: &Path) {
    for e in std::fs::read_dir(gitdir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("sbx-stage-"))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn open_dir_at(dir: BorrowedFd, name: &OsStr) -> Option<OwnedFd> {
    sys::openat(
        dir,
        &sys::cstr(name),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .ok()
}

fn write_new(dir: BorrowedFd, name: &OsStr, data: &[u8]) -> Result<(), String> {
    let fd = sys::create_file_with(dir, &sys::cstr(name), 0o600).map_err(|e| e.to_string())?;
    std::fs::File::from(fd)
        .write_all(data)
        .map_err(|e| e.to_string())
}

fn read_single(dir: BorrowedFd, name: &OsStr, max: u64) -> Option<Vec<u8>> {
    super::read_regular(dir, name, max, true)
}

/// Copy directory `name` of `from` into `to`: directories and regular files (each
/// at most `max` bytes), nothing else, at most `budget` entries.
fn copy_tree(
    from: BorrowedFd,
    to: BorrowedFd,
    name: &OsStr,
    max: u64,
    budget: &mut usize,
) -> Result<(), String> {
    let Some(src) = open_dir_at(from, name) else {
        return Ok(());
    };
    sys::mkdirat(to, &sys::cstr(name), 0o700).map_err(|e| e.to_string())?;
    let dst = open_dir_at(to, name).ok_or("cannot open a copied directory")?;
    for entry in names_in(src.as_fd(), *budget) {
        if *budget == 0 {
            return Err("more entries under refs than a repository has".into());
        }
        *budget -= 1;
        if open_dir_at(src.as_fd(), &entry).is_some() {
            copy_tree(src.as_fd(), dst.as_fd(), &entry, max, budget)?;
        } else if let Some(data) = read_single(src.as_fd(), &entry, max) {
            write_new(dst.as_fd(), &entry, &data)?;
        }
    }
    Ok(())
}

/// Copy the loose objects (`objects/XX/` + 38 hex digits) of `staging` that are
/// what their names say ([`super::loose`]), at most [`MAX_OBJECT_BYTES`] of files in
/// all: git then reads only objects that hash to their names.
fn copy_objects(staging: BorrowedFd, objects: BorrowedFd) -> Result<(), String> {
    let Some(from) = open_dir_at(staging, "objects".as_ref()) else {
        return Ok(());
    };
    let hex = |b: &[u8]| {
        b.iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    };
    let mut left = MAX_OBJECT_BYTES;
    let mut budget = super::loose::BUDGET;
    for fan in names_in(from.as_fd(), 300) {
        if fan.len() != 2 || !hex(fan.as_bytes()) {
            continue;
        }
        let Some(sub) = open_dir_at(from.as_fd(), &fan) else {
            continue;
        };
        sys::mkdirat(objects, &sys::cstr(&fan), 0o700).map_err(|e| e.to_string())?;
        let to = open_dir_at(objects, &fan).ok_or("objects fan-out")?;
        for name in names_in(sub.as_fd(), 1 << 20) {
            let mut full = fan.as_bytes().to_vec();
            full.extend_from_slice(name.as_bytes());
            let Some(oid) = (name.len() == 38 && hex(name.as_bytes()))
                .then(|| super::objects::parse_hex(&full))
                .flatten()
            else {
                continue;
            };
            let max = left.min(super::loose::MAX_OBJECT as u64);
            let Some(data) = read_single(sub.as_fd(), &name, max) else {
                continue;
            };
            left = left.saturating_sub(data.len() as u64);
            if super::loose::is_named(&data, &oid, &mut budget) {
                write_new(to.as_fd(), &name, &data)?;
            }
            if left == 0 || budget == 0 {
                return Err("more new objects than sbx reads (2 GiB)".into());
            }
        }
    }
    Ok(())
}

/// `git ls-remote` of the export: each ref git itself reads there (name, object
/// id), peeled tags left out.
pub fn refs_of(git: &Git, export: &Export) -> Result<Vec<(String, String)>, String> {
    let out = git.run(&[OsStr::new("ls-remote"), export.path.as_os_str()], b"")?;
    // A name that is not UTF-8 is left out (it would be written back as another).
    Ok(out
        .split(|c| *c == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, name)| !name.ends_with("^{}"))
        .map(|(oid, name)| (name.to_string(), oid.to_string()))
        .collect())
}

/// Fetch `wants` (object ids) from the export into the host's store, every object
/// checked by fsck and the history complete, or nothing.
pub fn fetch(git: &Git, export: &Export, wants: &[String]) -> Result<(), String> {
    if wants.is_empty() {
        return Ok(());
    }
    let args: Vec<&OsStr> = [
        "-c",
        "transfer.fsckObjects=true",
        "-c",
        "uploadpack.allowAnySHA1InWant=true",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        "--stdin",
    ]
    .iter()
    .map(OsStr::new)
    .chain([export.path.as_os_str()])
    .collect();
    let input = wants.join("\n") + "\n";
    let began = std::time::SystemTime::now();
    git.run(&args, input.as_bytes()).map(drop).inspect_err(|_| {
        // index-pack stopped by fsck (or a fetch killed) leaves its temporary pack.
        git.remove_partial_packs(began)
    })
}

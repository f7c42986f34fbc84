//! `--vcs commit`: the launcher's half of staging a git directory (the plan's half,
//! and why, is plan/vcs.rs).
//!
//! In the sandbox, the git directory's top level is a tmpfs holding copies of the
//! staged files (index, HEAD, ...) and of the loose refs, reflogs that start empty
//! (the stash's copied), the host's objects read-only (an alternate of the tmpfs's
//! own `objects`) and everything else read-only: `git commit` writes new objects,
//! refs and reflog lines to the tmpfs and renames its new index over the copy,
//! while a `commondir`, `config.worktree`, hook directory or
//! `rebase-merge/git-rebase-todo` (whose `exec` lines `git rebase --continue` runs)
//! it creates there never reaches the host. Nothing of the host's git directory is
//! writable during the run: a git running on the host meanwhile sees none of the
//! sandbox's moment-to-moment state. PID 1 passes the launcher a descriptor of that
//! tmpfs once the root is built; it outlives the sandbox's mount namespace, and
//! nothing of it is ever on the host's disk.
//!
//! After the run, in this order: each new loose object that is what its name says
//! joins the host's store if it passes [`objects::judge`] (trees checked as
//! `git fsck` checks them, nothing pointing at a refused or missing object); then
//! packed-refs, each loose ref the sandbox created, moved or deleted (named in the
//! report), its reflog lines, the index (rewritten by [`crate::gitindex::sanitize`])
//! and HEAD are written back the way git writes them (`NAME.lock`, created
//! exclusively, then renamed: a git running on the host meanwhile holds the lock and
//! wins), each only if the host's copy is what it was at the launch and the object
//! it names is in the host's store. `refs/replace` (which silently changes what
//! `git log` and `git diff` show) is never written back, and what else the sandbox
//! added is named and discarded.

pub mod objects;
mod refs;
pub mod sha1;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::plan::vcs::STAGED_FILES;
use crate::plan::{Access, MountOp, Plan};
use crate::sys;

/// The largest staged file read (git's index of a very large tree is far smaller).
const MAX_FILE: u64 = crate::plan::vcs::MAX_STAGED;

/// A git directory staged for one run.
pub struct Stage {
    gitdir: PathBuf,
    real: OwnedFd,
    /// The staged files as they were when the plan was made.
    before: BTreeMap<&'static str, Vec<u8>>,
    /// The names of the git directory's top level then.
    names: BTreeSet<OsString>,
    /// The loose refs and the reflogs copied in (path under `refs/` or `logs/`).
    refs: BTreeMap<PathBuf, Vec<u8>>,
    logs: BTreeMap<PathBuf, Vec<u8>>,
    /// New trees may hold gitlinks (the repository had submodules).
    submodules: bool,
}

/// The largest object imported (a bigger one stays in the sandbox, said), and the
/// most the import inflates in all: a few kilobytes of zlib can claim a gigabyte.
const MAX_OBJECT: u64 = 256 << 20;
const INFLATE_BUDGET: usize = 1 << 30;

/// Inflate `data` (one zlib stream, nothing after it) whose header declares its
/// size: the header first (64 bytes at most), then exactly that many bytes. None:
/// not such a stream, larger than `max`, or trailing bytes (git refuses "garbage at
/// end of loose object").
fn inflate_object(data: &[u8], max: usize) -> Option<Vec<u8>> {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};
    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let mut head = [0u8; 64];
    let first = inflate(&mut state, data, &mut head, MZFlush::None);
    let got = &head[..first.bytes_written];
    let nul = got.iter().position(|c| *c == 0)?;
    let (_, len) = std::str::from_utf8(&got[..nul]).ok()?.split_once(' ')?;
    let total = nul + 1 + len.parse::<usize>().ok().filter(|l| *l <= max)?;
    let mut out = vec![0u8; total];
    let n = got.len().min(total);
    out[..n].copy_from_slice(&got[..n]);
    if got.len() > total {
        return None;
    }
    let rest = inflate(
        &mut state,
        &data[first.bytes_consumed..],
        &mut out[n..],
        MZFlush::Finish,
    );
    let ended = matches!(rest.status, Ok(MZStatus::StreamEnd))
        || (n == total && matches!(first.status, Ok(MZStatus::StreamEnd)));
    (ended
        && n + rest.bytes_written == total
        && first.bytes_consumed + rest.bytes_consumed == data.len())
    .then_some(out)
}

/// The type of `raw` (an inflated loose object) if it is `type len\0content` with
/// its length right and its SHA-1 `oid`.
fn object_matches(raw: &[u8], oid: &[u8; 20]) -> Option<objects::Kind> {
    let nul = raw.iter().position(|c| *c == 0)?;
    let (kind, len) = std::str::from_utf8(&raw[..nul]).ok()?.split_once(' ')?;
    let kind = objects::Kind::parse(kind)?;
    (len.parse::<usize>().ok() == Some(raw.len() - nul - 1) && sha1::digest(raw) == *oid)
        .then_some(kind)
}

fn hex_pair(b: &[u8]) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).filter(|_| !c.is_ascii_uppercase());
    Some((d(b[0])? * 16 + d(b[1])?) as u8)
}

/// The loose objects the sandbox wrote that are what their names say (zlib, a
/// valid header, the SHA-1 of both), and the names of the others (not zlib, lying,
/// too large, over the inflate budget, unreadable).
fn collect_objects(staging: BorrowedFd) -> (BTreeMap<objects::Oid, objects::Object>, Vec<String>) {
    let (mut found, mut refused) = (BTreeMap::new(), Vec::new());
    let mut budget = INFLATE_BUDGET;
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let Ok(objects) = sys::openat(staging, c"objects", dir_flags) else {
        return (found, refused);
    };
    for fan in names_in(objects.as_fd(), 4096) {
        let fb = fan.as_bytes();
        let Some(first) = (fb.len() == 2).then(|| hex_pair(fb)).flatten() else {
            continue;
        };
        let Ok(sub) = sys::openat(objects.as_fd(), &sys::cstr(&fan), dir_flags) else {
            continue;
        };
        for name in names_in(sub.as_fd(), usize::MAX) {
            let nb = name.as_bytes();
            if nb.len() != 38 {
                continue;
            }
            let mut oid = [0u8; 20];
            oid[0] = first;
            let parsed = (0..19).all(|i| {
                hex_pair(&nb[i * 2..i * 2 + 2])
                    .map(|v| oid[i + 1] = v)
                    .is_some()
            });
            if !parsed {
                continue;
            }
            let data = read_at(sub.as_fd(), &name, MAX_OBJECT);
            let raw = data.as_ref().and_then(|data| {
                (budget > 0)
                    .then(|| inflate_object(data, (MAX_OBJECT as usize).min(budget)))
                    .flatten()
            });
            budget = budget.saturating_sub(raw.as_ref().map_or(0, Vec::len));
            match raw.and_then(|raw| object_matches(&raw, &oid).map(|k| (k, raw))) {
                Some((kind, raw)) => {
                    let nul = raw.iter().position(|c| *c == 0).unwrap_or(0);
                    let keep =
                        kind != objects::Kind::Blob || raw.len() - nul - 1 <= objects::KEEP_BLOB;
                    let body = keep.then(|| raw[nul + 1..].to_vec());
                    found.insert(oid, objects::Object { kind, body });
                }
                None => refused.push(format!(
                    "{}{}",
                    fan.to_string_lossy(),
                    name.to_string_lossy()
                )),
            }
        }
    }
    (found, refused)
}

/// Add the accepted objects to the host's store: each file as the sandbox wrote it
/// (already checked), through a private name and a rename, never over an existing
/// one. Packs, the commit-graph and anything else it wrote stay behind. Returns
/// how many were added.
fn add_objects(
    staging: BorrowedFd,
    real: BorrowedFd,
    accepted: impl Iterator<Item = objects::Oid>,
) -> usize {
    let mut added = 0;
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let (Ok(from), Ok(host)) = (
        sys::openat(staging, c"objects", dir_flags),
        sys::openat(real, c"objects", dir_flags),
    ) else {
        return 0;
    };
    for oid in accepted {
        let h = objects::hex(&oid);
        let (fan, name) = (sys::cstr(h[..2].as_ref()), sys::cstr(h[2..].as_ref()));
        let Some(data) = sys::openat(from.as_fd(), &fan, dir_flags)
            .ok()
            .and_then(|d| read_at(d.as_fd(), h[2..].as_ref(), MAX_OBJECT))
        else {
            continue;
        };
        let _ = sys::mkdirat(host.as_fd(), &fan, 0o755);
        let Ok(to) = sys::openat(host.as_fd(), &fan, dir_flags) else {
            continue;
        };
        if sys::openat(to.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW).is_ok() {
            continue; // the host has it: never replaced
        }
        let tmp =
            CString::new(format!("tmp_obj_sbx_{}_{added}", std::process::id())).expect("no NUL");
        let written = sys::create_file_with(to.as_fd(), &tmp, 0o444)
            .map_err(|e| e.to_string())
            .and_then(|fd| {
                std::fs::File::from(fd)
                    .write_all(&data)
                    .map_err(|e| e.to_string())
            });
        // SAFETY: valid fds and C strings.
        let renamed = written.is_ok()
            && unsafe {
                libc::renameat(to.as_raw_fd(), tmp.as_ptr(), to.as_raw_fd(), name.as_ptr())
            } == 0;
        if renamed {
            added += 1;
        } else {
            // SAFETY: valid fd and C string.
            unsafe { libc::unlinkat(to.as_raw_fd(), tmp.as_ptr(), 0) };
        }
    }
    added
}

/// A regular file `name` in `dir`, opened without following a symlink or blocking
/// on a FIFO; None: absent, not a regular file, or larger than `max`.
fn read_at(dir: BorrowedFd, name: &std::ffi::OsStr, max: u64) -> Option<Vec<u8>> {
    let fd = sys::openat(
        dir,
        &sys::cstr(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    )
    .ok()?;
    let st = sys::fstat(fd.as_fd()).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > max {
        return None;
    }
    let mut out = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= max).then_some(out)
}

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    sys::open_no_symlinks(
        &sys::cstr(path.as_os_str()),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
    .map_err(|e| e.to_string())
}

/// Before the launch: open each staged git directory.
/// One that cannot be opened is made read-only in the plan instead (said in the
/// returned notices): never writable without the checks after the run.
pub fn begin(plan: &mut Plan) -> (Vec<Stage>, Vec<String>) {
    let mut stages = Vec::new();
    let mut notices = Vec::new();
    let mut kept = Vec::new();
    for s in std::mem::take(&mut plan.git_staged) {
        match open_dir(&s.gitdir) {
            Ok(real) => {
                stages.push(Stage {
                    gitdir: s.gitdir.clone(),
                    real,
                    before: s.before.iter().cloned().collect(),
                    names: s.names.iter().cloned().collect(),
                    refs: s.refs.iter().cloned().collect(),
                    logs: s.logs.iter().cloned().collect(),
                    submodules: s.submodules,
                });
                kept.push(s);
            }
            Err(why) => {
                for m in plan.mounts.iter_mut() {
                    if let MountOp::Bind { dst, access, .. } = &mut m.op {
                        if dst.starts_with(&s.dst) {
                            *access = Access::ReadOnly;
                        }
                    }
                }
                notices.push(format!(
                    "--vcs commit: cannot open {} ({why}): it is read-only in this run",
                    s.gitdir.display()
                ));
            }
        }
    }
    plan.git_staged = kept;
    (stages, notices)
}

/// Whether `b` is one line holding an object id (40 hex digits) and nothing else.
fn is_oid_line(b: &[u8]) -> bool {
    b.len() == 41 && b[40] == b'\n' && b[..40].iter().all(u8::is_ascii_hexdigit)
}

/// A ref name as git writes it in HEAD: `refs/` then printable ASCII without the
/// characters check-ref-format refuses.
fn is_ref_name(b: &[u8]) -> bool {
    b.starts_with(b"refs/")
        && std::str::from_utf8(b).is_ok()
        && !b.windows(2).any(|w| w == b"..")
        && b.iter()
            .all(|c| (c.is_ascii_graphic() || *c >= 0x80) && !b" ~^:?*[\\".contains(c))
}

/// The staged file `name` as the sandbox left it, checked and made safe; Err: why it
/// is not written back. `has`: the object is in the host's store (after the import).
fn checked(
    name: &str,
    old: Option<&[u8]>,
    new: Vec<u8>,
    has: &dyn Fn(&objects::Oid) -> bool,
) -> Result<Vec<u8>, String> {
    let lines = || new.split_inclusive(|c| *c == b'\n');
    let present = |l: &[u8]| objects::parse_hex(&l[..40]).is_some_and(|o| has(&o));
    let ok = match name {
        "index" => return crate::gitindex::sanitize(old, &new),
        "HEAD" => {
            (is_oid_line(&new) && present(&new))
                || new
                    .strip_prefix(b"ref: ")
                    .and_then(|r| r.strip_suffix(b"\n"))
                    .is_some_and(is_ref_name)
        }
        "ORIG_HEAD" => is_oid_line(&new) && present(&new),
        "FETCH_HEAD" => lines().all(|l| l.len() > 41 && l[..40].iter().all(u8::is_ascii_hexdigit)),
        "packed-refs" => {
            let had: BTreeSet<&[u8]> = old
                .unwrap_or_default()
                .split_inclusive(|c| *c == b'\n')
                .collect();
            // A line the host had stands; a new one names a ref git may write and
            // an object the host has, and is not a replace ref.
            lines().all(|l| {
                let refname = l.get(41..).unwrap_or_default();
                had.contains(l)
                    || l.starts_with(b"#")
                    || (l.starts_with(b"^") && l.len() == 42 && is_oid_line(&l[1..]))
                    || (l.len() > 41
                        && l[40] == b' '
                        && present(l)
                        && is_ref_name(refname.strip_suffix(b"\n").unwrap_or(refname))
                        && !refname.starts_with(b"refs/replace/"))
            })
        }
        _ => true, // COMMIT_EDITMSG: a message
    };
    if ok {
        Ok(new)
    } else {
        Err(
            "not in the format git writes, a replace ref, or naming an object that did not \
             reach the host"
                .into(),
        )
    }
}

/// Write `data` as `name` in `dir` the way git does, if the host's file is still
/// `expected` (None: absent). Err: why not.
fn write_back(
    dir: BorrowedFd,
    name: &str,
    expected: Option<&[u8]>,
    data: &[u8],
) -> Result<(), String> {
    let lock = CString::new(format!("{name}.lock")).expect("no NUL");
    let fd = sys::create_file_with(dir, &lock, 0o644).map_err(|e| {
        if e.errno == libc::EEXIST {
            format!("git is running on the host ({name}.lock exists)")
        } else {
            e.to_string()
        }
    })?;
    let unlock = || {
        // SAFETY: valid fd and C string.
        unsafe { libc::unlinkat(dir.as_raw_fd(), lock.as_ptr(), 0) };
    };
    if read_at(dir, std::ffi::OsStr::new(name), MAX_FILE).as_deref() != expected {
        unlock();
        return Err("it changed on the host during the run; the host's is kept".into());
    }
    let mut f = std::fs::File::from(fd);
    if let Err(e) = f.write_all(data).and_then(|()| f.sync_data()) {
        unlock();
        return Err(e.to_string());
    }
    let to = CString::new(name).expect("no NUL");
    // SAFETY: valid fd and C strings.
    if unsafe { libc::renameat(dir.as_raw_fd(), lock.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } != 0
    {
        let e = sys::errno();
        unlock();
        return Err(format!("renameat({name}.lock, {name}): errno {e}"));
    }
    Ok(())
}

/// The names in directory `dir` (at most `max`).
fn names_in(dir: BorrowedFd, max: usize) -> Vec<OsString> {
    let Ok(fd) = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY) else {
        return Vec::new();
    };
    std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|rd| rd.flatten().take(max).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Join `items` for a message, the first `n` of them.
fn listed(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s += &format!(" and {} more", items.len() - n);
    }
    s
}

/// What the end of a staged run says: the moves (notices, quiet with -q) and what
/// was not kept and why (warnings).
#[derive(Default)]
pub struct Report {
    pub notices: Vec<String>,
    pub warnings: Vec<String>,
}

/// After the run: add the objects that may be added, then write back what may be.
/// `received`: each stage's tmpfs, as PID 1 passed them (in the plan's order).
pub fn finish(stages: Vec<Stage>, received: Vec<OwnedFd>) -> Report {
    let mut report = Report::default();
    let out = &mut report.warnings;
    for (s, staging) in stages.into_iter().zip(received) {
        let shown = s.gitdir.display().to_string();
        let not_kept = |what: &str, items: &[String]| {
            format!(
                "--vcs commit: {} {what} from the sandbox not kept in {shown}: {}",
                items.len(),
                listed(items, 5)
            )
        };
        // Objects first: a ref is moved only to what the host's store then has.
        let (new, bad) = collect_objects(staging.as_fd());
        let host = sys::openat(
            s.real.as_fd(),
            c"objects",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map(|o| objects::HostStore::open(o.as_fd()));
        let Ok(host) = host else {
            out.push(format!(
                "--vcs commit: cannot open {shown}/objects: nothing kept"
            ));
            continue;
        };
        let refused = objects::judge(&new, &host, s.submodules);
        let added = add_objects(
            staging.as_fd(),
            s.real.as_fd(),
            new.keys().filter(|o| !refused.contains_key(*o)).copied(),
        );
        crate::trace::step("launcher", || {
            format!("--vcs commit: {added} objects added to {shown}")
        });
        if !bad.is_empty() {
            out.push(not_kept(
                "objects that are not what their names say (or too large, or unreadable)",
                &bad,
            ));
        }
        if !refused.is_empty() {
            let why: Vec<String> = refused
                .iter()
                .map(|(o, why)| format!("{} ({why})", objects::hex(o)))
                .collect();
            out.push(not_kept("objects", &why));
        }
        let has = |o: &objects::Oid| host.has(o);
        // packed-refs before the loose refs: `git pack-refs` removes a loose ref
        // only once it is packed.
        let mut packed_kept = true;
        let staged = |name: &str, out: &mut Vec<String>| -> bool {
            let old = s.before.get(name).map(Vec::as_slice);
            let Some(new) = read_at(staging.as_fd(), std::ffi::OsStr::new(name), MAX_FILE) else {
                return true;
            };
            if Some(new.as_slice()) == old {
                return true;
            }
            let done = checked(name, old, new, &has)
                .and_then(|data| write_back(s.real.as_fd(), name, old, &data));
            match done {
                Ok(()) => true,
                Err(why) => {
                    out.push(format!(
                        "--vcs commit: {shown}/{name} from the sandbox was not kept: {why}"
                    ));
                    false
                }
            }
        };
        packed_kept &= staged("packed-refs", out);
        let after = sys::openat(
            staging.as_fd(),
            c"refs",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map(|d| refs::walk(d.as_fd(), 4096))
        .unwrap_or_default();
        let moved = refs::write(s.real.as_fd(), &s.refs, &after, &has, packed_kept);
        if !moved.moved.is_empty() {
            report
                .notices
                .push(format!("git in {shown}: {}", listed(&moved.moved, 8)));
        }
        if !moved.refused.is_empty() {
            out.push(not_kept("ref changes", &moved.refused));
        }
        let head_kept = ["index", "HEAD", "ORIG_HEAD", "COMMIT_EDITMSG", "FETCH_HEAD"]
            .map(|name| staged(name, out))[1];
        let logs_after = sys::openat(
            staging.as_fd(),
            c"logs",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map(|d| refs::walk(d.as_fd(), MAX_FILE))
        .unwrap_or_default();
        let log_refused = refs::write_logs(
            s.real.as_fd(),
            &s.logs,
            &logs_after,
            &moved.written,
            head_kept,
            &has,
        );
        if !log_refused.is_empty() {
            out.push(not_kept("reflog changes", &log_refused));
        }
        // What the sandbox added to the top level, discarded.
        let added: Vec<String> = names_in(staging.as_fd(), 4096)
            .into_iter()
            .filter(|n| {
                !s.names.contains(n)
                    && !STAGED_FILES.iter().any(|f| n.as_bytes() == f.as_bytes())
                    && n.as_bytes() != crate::plan::vcs::HOST_OBJECTS.as_bytes()
            })
            .filter(|n| !n.as_bytes().ends_with(b".lock"))
            .map(|n| String::from_utf8_lossy(&n.into_vec()).into_owned())
            .collect();
        if !added.is_empty() {
            out.push(format!(
                "--vcs commit: discarded what the sandbox added to {shown}: {}",
                added.join(", ")
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    fn object(body: &[u8]) -> Vec<u8> {
        let mut raw = format!("blob {}\0", body.len()).into_bytes();
        raw.extend_from_slice(body);
        raw
    }

    #[test]
    fn an_object_is_inflated_only_when_it_is_one_stream_of_its_declared_size() {
        let raw = object(b"hello\n");
        let z = compress_to_vec_zlib(&raw, 6);
        assert_eq!(inflate_object(&z, 1 << 20).unwrap(), raw);
        let oid: [u8; 20] = sha1::digest(&raw);
        assert_eq!(object_matches(&raw, &oid), Some(objects::Kind::Blob));
        // Trailing bytes after the stream.
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"junk");
        assert!(inflate_object(&trailing, 1 << 20).is_none());
        // A header that lies about the length, either way.
        for lie in [b"blob 5\0hello\n".to_vec(), b"blob 9\0hello\n".to_vec()] {
            assert!(inflate_object(&compress_to_vec_zlib(&lie, 6), 1 << 20).is_none());
        }
        // A bomb: 64 MiB of zeros in a few kilobytes, over the limit, refused
        // before it is inflated.
        let bomb = compress_to_vec_zlib(&object(&vec![0u8; 64 << 20]), 9);
        assert!(bomb.len() < 1 << 20);
        assert!(inflate_object(&bomb, 1 << 20).is_none());
        // An object whose content is not its name.
        assert!(object_matches(&raw, &[0u8; 20]).is_none());
        // Not zlib at all.
        assert!(inflate_object(b"plain text", 1 << 20).is_none());
    }
}

//! The loose refs and reflogs of a staged git directory, written back after the
//! run: ref by ref, each only when its name is one git would write, its content a
//! ref git would write, the object it names in the host's store and the host's
//! ref unchanged since the launch; reflog lines only for what was written back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::objects::{parse_hex, Oid};
use super::{is_oid_line, is_ref_name, names_in, read_at, write_back};
use crate::sys;

/// The regular files under `dir` (path below it, content), following no symlink;
/// anything else the sandbox left there is ignored. Bounded like the copy in.
pub fn walk(dir: BorrowedFd, max_file: u64) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<(PathBuf, OwnedFd)> = Vec::new();
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    if let Ok(fd) = sys::openat(dir, c".", flags) {
        todo.push((PathBuf::new(), fd));
    }
    let mut seen = 0;
    while let Some((rel, fd)) = todo.pop() {
        for name in names_in(fd.as_fd(), crate::plan::vcs::MAX_REFS) {
            seen += 1;
            if seen > 4 * crate::plan::vcs::MAX_REFS {
                return out;
            }
            if let Ok(sub) = sys::openat(fd.as_fd(), &sys::cstr(&name), flags) {
                todo.push((rel.join(&name), sub));
            } else if let Some(data) = read_at(fd.as_fd(), &name, max_file) {
                out.insert(rel.join(&name), data);
            }
        }
    }
    out
}

/// A loose ref path (below `refs/`) git would write: a valid ref name, no component
/// starting with `.` or ending in `.lock` (git-check-ref-format(1)).
fn ref_path_ok(rel: &Path) -> bool {
    let full = Path::new("refs").join(rel);
    is_ref_name(full.as_os_str().as_bytes())
        && rel.components().all(|c| match c {
            Component::Normal(n) => {
                let n = n.as_bytes();
                !n.is_empty() && !n.starts_with(b".") && !n.ends_with(b".lock")
            }
            _ => false,
        })
}

/// The content of a loose ref: an object id, or a symbolic ref to a ref name.
fn ref_target(data: &[u8]) -> Option<Result<Oid, ()>> {
    if is_oid_line(data) {
        return parse_hex(&data[..40]).map(Ok);
    }
    data.strip_prefix(b"ref: ")
        .and_then(|r| r.strip_suffix(b"\n"))
        .filter(|r| is_ref_name(r))
        .map(|_| Err(()))
}

/// Open (making where missing) the directory `rel` below `base`, one component at a
/// time, following no symlink.
fn open_dirs(base: BorrowedFd, rel: &Path, make: bool) -> Option<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut cur = sys::openat(base, c".", flags).ok()?;
    for c in rel.components() {
        let Component::Normal(n) = c else {
            return None;
        };
        let n = sys::cstr(n);
        if make {
            let _ = sys::mkdirat(cur.as_fd(), &n, 0o755);
        }
        cur = sys::openat(cur.as_fd(), &n, flags).ok()?;
    }
    Some(cur)
}

/// Remove ref `name` in `dir` the way git does (lock, check, unlink), if the host's
/// is still `expected`.
fn delete(dir: BorrowedFd, name: &str, expected: &[u8]) -> Result<(), String> {
    let lock = std::ffi::CString::new(format!("{name}.lock")).expect("no NUL");
    sys::create_file_with(dir, &lock, 0o644)
        .map_err(|_| format!("git is running on the host ({name}.lock exists)"))?;
    let now = read_at(dir, name.as_ref(), 4096);
    let to = sys::cstr(name.as_ref());
    let result = if now.as_deref() == Some(expected) {
        // SAFETY: valid fd and C string.
        (unsafe { libc::unlinkat(dir.as_raw_fd(), to.as_ptr(), 0) } == 0)
            .then_some(())
            .ok_or_else(|| format!("unlinkat({name}): errno {}", sys::errno()))
    } else {
        Err("it changed on the host during the run; the host's is kept".into())
    };
    // SAFETY: valid fd and C string.
    unsafe { libc::unlinkat(dir.as_raw_fd(), lock.as_ptr(), 0) };
    result
}

fn short(data: &[u8]) -> String {
    match data.strip_prefix(b"ref: ") {
        Some(r) => String::from_utf8_lossy(r).trim_end().to_string(),
        None => String::from_utf8_lossy(&data[..data.len().min(7)]).into_owned(),
    }
}

/// What became of the refs: the moves made on the host, the ones refused (why),
/// and the names of the refs written (their reflogs follow).
#[derive(Default)]
pub struct Outcome {
    pub moved: Vec<String>,
    pub refused: Vec<String>,
    pub written: BTreeSet<PathBuf>,
}

/// Write back the loose refs that changed: `before` as copied in, `after` as the
/// sandbox left them. `has`: the object is in the host's store. `deletions`:
/// a ref the sandbox removed may be removed on the host (false when its packed-refs
/// did not reach the host: `git pack-refs` removes the loose ref it packed).
pub fn write(
    gitdir: BorrowedFd,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    has: &dyn Fn(&Oid) -> bool,
    deletions: bool,
) -> Outcome {
    let mut out = Outcome::default();
    let names: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    for rel in names {
        let (old, new) = (before.get(rel), after.get(rel));
        if old == new {
            continue;
        }
        let shown = Path::new("refs").join(rel).display().to_string();
        let verdict = (|| {
            if !ref_path_ok(rel) {
                return Err("not a ref name git writes".to_string());
            }
            if rel.starts_with("replace") {
                return Err("replace refs change what git log and git diff show".into());
            }
            let leaf = rel.file_name().and_then(|n| n.to_str()).ok_or("no name")?;
            let parent = rel.parent().unwrap_or(Path::new(""));
            match new {
                Some(data) => {
                    match ref_target(data) {
                        None => return Err("not a ref git writes".into()),
                        Some(Ok(oid)) if !has(&oid) => {
                            return Err(format!(
                                "it names {}, which did not reach the host's objects",
                                short(data)
                            ))
                        }
                        Some(_) => {}
                    }
                    let dir = open_dirs(gitdir, &Path::new("refs").join(parent), true)
                        .ok_or("cannot open its directory")?;
                    write_back(dir.as_fd(), leaf, old.map(Vec::as_slice), data)
                }
                None if !deletions => Err("its packed-refs was not kept".into()),
                None => {
                    let dir = open_dirs(gitdir, &Path::new("refs").join(parent), false)
                        .ok_or("cannot open its directory")?;
                    delete(
                        dir.as_fd(),
                        leaf,
                        old.map(Vec::as_slice).unwrap_or_default(),
                    )
                }
            }
        })();
        match verdict {
            Ok(()) => {
                out.moved.push(match (old, new) {
                    (Some(o), Some(n)) => format!("{shown} {}..{}", short(o), short(n)),
                    (None, Some(n)) => format!("{shown} new at {}", short(n)),
                    _ => format!("{shown} deleted"),
                });
                out.written.insert(Path::new("refs").join(rel));
            }
            Err(why) => out.refused.push(format!("{shown}: {why}")),
        }
    }
    out
}

/// A reflog line as git writes it: two object ids, an identity, a time, a message;
/// the new id in the host's store (or zero: a deletion).
fn log_line_ok(l: &[u8], has: &dyn Fn(&Oid) -> bool) -> bool {
    l.len() > 83
        && parse_hex(l.get(41..81).unwrap_or_default()).is_some_and(|o| o == [0u8; 20] || has(&o))
        && l.ends_with(b"\n")
        && parse_hex(&l[..40]).is_some()
        && l[40] == b' '
        && parse_hex(&l[41..81]).is_some()
        && l[81] == b' '
        && !l[..l.len() - 1].contains(&b'\n')
        && !l.contains(&0)
}

/// Bring the reflogs of the refs written back (and of HEAD, when `head`) to the
/// host: the lines the sandbox appended are appended there (each naming an object
/// the host has); a reflog it rewrote
/// (a copied one: `git stash drop`) replaces the host's if that is unchanged.
/// Returns what was refused.
pub fn write_logs(
    gitdir: BorrowedFd,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    written: &BTreeSet<PathBuf>,
    head: bool,
    has: &dyn Fn(&Oid) -> bool,
) -> Vec<String> {
    let mut refused = Vec::new();
    for (rel, data) in after {
        let old = before.get(rel).map(Vec::as_slice).unwrap_or_default();
        if data.as_slice() == old || !(written.contains(rel) || (head && rel == Path::new("HEAD")))
        {
            continue;
        }
        let shown = Path::new("logs").join(rel).display().to_string();
        let (Some(leaf), parent) = (
            rel.file_name().and_then(|n| n.to_str()),
            rel.parent().unwrap_or(Path::new("")),
        ) else {
            continue;
        };
        let Some(dir) = open_dirs(gitdir, &Path::new("logs").join(parent), true) else {
            refused.push(format!("{shown}: cannot open its directory"));
            continue;
        };
        let appended = data.strip_prefix(old);
        let lines = appended.unwrap_or(data);
        if !lines
            .split_inclusive(|c| *c == b'\n')
            .all(|l| log_line_ok(l, has))
        {
            refused.push(format!("{shown}: not reflog lines git writes"));
            continue;
        }
        let done = match appended {
            Some(new_lines) => sys::open_append(dir.as_fd(), &sys::cstr(leaf.as_ref()), 0o644)
                .map_err(|e| e.to_string())
                .and_then(|fd| {
                    let st = sys::fstat(fd.as_fd()).map_err(|e| e.to_string())?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                        return Err("not a regular file on the host".into());
                    }
                    std::fs::File::from(fd)
                        .write_all(new_lines)
                        .map_err(|e| e.to_string())
                }),
            None => write_back(dir.as_fd(), leaf, before.get(rel).map(Vec::as_slice), data),
        };
        if let Err(why) = done {
            refused.push(format!("{shown}: {why}"));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refs_git_writes_are_written_back() {
        for ok in [
            "heads/main",
            "tags/v1.0",
            "remotes/origin/feature/x",
            "stash",
        ] {
            assert!(ref_path_ok(Path::new(ok)), "{ok}");
        }
        for bad in [
            "heads/.hidden",
            "heads/main.lock",
            "heads/a..b",
            "heads/with space",
            "heads/col:on",
            "../config",
            "heads/../../config",
        ] {
            assert!(!ref_path_ok(Path::new(bad)), "{bad}");
        }
        let oid = format!("{}\n", "ab".repeat(20));
        assert!(matches!(ref_target(oid.as_bytes()), Some(Ok(_))));
        assert!(matches!(
            ref_target(b"ref: refs/heads/main\n"),
            Some(Err(()))
        ));
        for bad in [&b"ref: ../x\n"[..], b"hello\n", b"", &oid.as_bytes()[..40]] {
            assert!(ref_target(bad).is_none());
        }
    }

    #[test]
    fn reflog_lines_are_checked() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let good = format!("{z} {a} A U Thor <a@b> 1700000000 +0000\tcommit (initial): x\n");
        let all = |_: &Oid| true;
        assert!(log_line_ok(good.as_bytes(), &all));
        assert!(!log_line_ok(good.as_bytes(), &|_: &Oid| false));
        assert!(!log_line_ok(
            b"garbage line that is long enough to pass the length test but has no ids\n",
            &all
        ));
        assert!(!log_line_ok(good.trim_end().as_bytes(), &all));
    }
}

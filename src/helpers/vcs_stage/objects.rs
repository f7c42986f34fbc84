//! The host's object store, asked whether it has an object: loose files, the pack
//! indexes (version 2, searched on disk) and the stores its `info/alternates`
//! names. The index a staged run leaves is written back only when every object it
//! names is there.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use std::os::unix::ffi::OsStrExt;

use crate::sys;

pub type Oid = [u8; 20];

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

/// gitformat-pack(5): a version 2 index is `\377tOc`, version 2, a fan-out of 256
/// counts, then the sorted object names.
fn idx_has(fd: BorrowedFd, oid: &Oid) -> bool {
    let mut head = [0u8; 8];
    if !sys::pread_exact(fd, &mut head, 0) || head != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return false;
    }
    let count = |i: usize| -> Option<u64> {
        let mut b = [0u8; 4];
        sys::pread_exact(fd, &mut b, 8 + 4 * i as u64).then(|| u32::from_be_bytes(b) as u64)
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
        if !sys::pread_exact(fd, &mut name, 8 + 1024 + 20 * mid) {
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

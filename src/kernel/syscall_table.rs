//! Syscall names and numbers, for profiles that allow or deny calls by name (an
//! unknown name is an error) and for sbx's own deny-lists. From the `syscalls`
//! crate, which generates its tables from the kernel's (current to Linux 6.17, with
//! `open_tree_attr`, `listmount`/`statmount`, the `*xattrat` calls and
//! `file_getattr`/`file_setattr`); only this architecture's is compiled in.

use std::str::FromStr;

/// This architecture's number for `name`; None: no such syscall here.
pub fn number(name: &str) -> Option<u32> {
    syscalls::Sysno::from_str(name).ok().map(|s| s.id() as u32)
}

/// Every (name, number) of this architecture, by number.
pub fn all() -> impl Iterator<Item = (&'static str, u32)> {
    (0..=syscalls::Sysno::last().id() as usize)
        .filter_map(syscalls::Sysno::new)
        .map(|s| (s.name(), s.id() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_libc() {
        assert_eq!(number("read"), Some(libc::SYS_read as u32));
        assert_eq!(number("ptrace"), Some(libc::SYS_ptrace as u32));
        assert_eq!(number("clone3"), Some(libc::SYS_clone3 as u32));
        assert_eq!(number("mseal"), Some(libc::SYS_mseal as u32));
        assert_eq!(number("no_such_call"), None);
        // The calls an older table lacked (Linux 6.6 to 6.17).
        #[cfg(target_arch = "x86_64")]
        for (name, nr) in [
            ("listmount", 458),
            ("statmount", 457),
            ("setxattrat", 463),
            ("removexattrat", 466),
            ("open_tree_attr", 467),
            ("file_getattr", 468),
            ("file_setattr", 469),
        ] {
            assert_eq!(number(name), Some(nr), "{name}");
        }
        // The last one is listed too (the crate's own iterator stops short of it).
        assert_eq!(
            all().last().map(|(n, _)| n),
            Some(syscalls::Sysno::last().name())
        );
        assert!(all().count() > 350);
    }
}

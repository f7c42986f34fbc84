//! The namespaces, in one table: each kind's clone flag, its name in
//! `/proc/PID/ns` and which of sbx's processes creates it. The plan, the records,
//! `--inspect`, `--enter`, the seccomp policy and the launcher all read it; adding a
//! namespace is one row (docs/ARCHITECTURE.md, "Adding a namespace").
//!
//! The user namespace is made first and owns every namespace made after it
//! (clone(2): CLONE_NEWUSER is acted on first), so the sandbox holds capabilities
//! only over its own.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Ipc,
    Uts,
    Net,
    Cgroup,
    Time,
}

/// Which process creates a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maker {
    /// The launcher's clone of PID 1: the user namespace (first), and the pid
    /// namespace PID 1 must be born in.
    Clone,
    /// PID 1, by unshare(2), while the launcher runs the id-map helpers.
    Pid1,
    /// The command's process, by unshare(2): the network namespace, which pasta
    /// joins from outside.
    Command,
    /// sbx never makes one (its seccomp policy refuses it to the sandbox).
    Never,
}

pub struct Row {
    pub kind: Namespace,
    pub flag: libc::c_int,
    pub flag_name: &'static str,
    /// The name in /proc/PID/ns (and in records, `--info-fd` and `--inspect`).
    pub proc_name: &'static str,
    pub maker: Maker,
}

pub const TABLE: [Row; 8] = [
    Row {
        kind: Namespace::User,
        flag: libc::CLONE_NEWUSER,
        flag_name: "CLONE_NEWUSER",
        proc_name: "user",
        maker: Maker::Clone,
    },
    Row {
        kind: Namespace::Mount,
        flag: libc::CLONE_NEWNS,
        flag_name: "CLONE_NEWNS",
        proc_name: "mnt",
        maker: Maker::Pid1,
    },
    Row {
        kind: Namespace::Pid,
        flag: libc::CLONE_NEWPID,
        flag_name: "CLONE_NEWPID",
        proc_name: "pid",
        maker: Maker::Clone,
    },
    Row {
        kind: Namespace::Ipc,
        flag: libc::CLONE_NEWIPC,
        flag_name: "CLONE_NEWIPC",
        proc_name: "ipc",
        maker: Maker::Pid1,
    },
    Row {
        kind: Namespace::Uts,
        flag: libc::CLONE_NEWUTS,
        flag_name: "CLONE_NEWUTS",
        proc_name: "uts",
        maker: Maker::Pid1,
    },
    Row {
        kind: Namespace::Net,
        flag: libc::CLONE_NEWNET,
        flag_name: "CLONE_NEWNET",
        proc_name: "net",
        maker: Maker::Command,
    },
    Row {
        kind: Namespace::Cgroup,
        flag: libc::CLONE_NEWCGROUP,
        flag_name: "CLONE_NEWCGROUP",
        proc_name: "cgroup",
        maker: Maker::Pid1,
    },
    Row {
        kind: Namespace::Time,
        flag: libc::CLONE_NEWTIME,
        flag_name: "CLONE_NEWTIME",
        proc_name: "time",
        maker: Maker::Never,
    },
];

impl Namespace {
    pub fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|r| r.kind == self)
            .expect("every namespace has a row")
    }

    pub fn clone_flag(self) -> libc::c_int {
        self.row().flag
    }

    pub fn maker(self) -> Maker {
        self.row().maker
    }
}

/// The namespaces sbx makes (every row but those it never makes), in table order:
/// the order they are recorded and shown.
pub fn made() -> impl Iterator<Item = &'static Row> {
    TABLE.iter().filter(|r| r.maker != Maker::Never)
}

/// Every namespace flag the kernel knows (for the seccomp policy).
pub const ALL_FLAGS: libc::c_int = {
    let mut f = 0;
    let mut i = 0;
    while i < TABLE.len() {
        f |= TABLE[i].flag;
        i += 1;
    }
    f
};

/// `flags` as `CLONE_NEWUSER|CLONE_NEWPID` (for errors and traces).
pub fn flag_names(flags: libc::c_int) -> String {
    TABLE
        .iter()
        .filter(|r| flags & r.flag != 0)
        .map(|r| r.flag_name)
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_namespace_with_distinct_flags_and_names() {
        for (i, a) in TABLE.iter().enumerate() {
            assert_eq!(a.kind.row().flag, a.flag);
            assert!(a.flag.count_ones() == 1, "{}", a.flag_name);
            for b in &TABLE[i + 1..] {
                assert!(a.kind != b.kind && a.flag != b.flag && a.proc_name != b.proc_name);
            }
            // The name the kernel shows for it.
            if a.maker != Maker::Never {
                assert!(
                    std::path::Path::new("/proc/self/ns")
                        .join(a.proc_name)
                        .exists(),
                    "{}",
                    a.proc_name
                );
            }
        }
        assert_eq!(
            flag_names(libc::CLONE_NEWUSER | libc::CLONE_NEWPID),
            "CLONE_NEWUSER|CLONE_NEWPID"
        );
        assert_eq!(ALL_FLAGS & libc::CLONE_NEWTIME, libc::CLONE_NEWTIME);
        assert_eq!(made().count(), 7);
    }
}

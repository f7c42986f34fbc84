//! One module per kernel concept that confines the sandbox: namespaces,
//! capabilities, Landlock, seccomp (with the syscall table it names calls by) and
//! cgroups. Each plans nothing: the plan decides, these carry it out or describe it.

pub mod caps;
pub mod cgroup;
pub mod landlock;
pub mod namespace;
pub mod seccomp;
pub mod syscall_table;

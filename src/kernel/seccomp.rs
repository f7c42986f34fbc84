//! The seccomp filter, assembled in-process in microseconds (README, "Hardening": never compile
//! with libseccomp at launch). The policy is a pure function of the plan
//! ([`SeccompPlan`]), and the assembled program is tested rule by rule with a small
//! classic-BPF interpreter.
//!
//! The default policy refuses, with EPERM so programs degrade gracefully:
//! - the kernel surfaces a sandboxed program has no business with (keyrings, bpf,
//!   userfaultfd, perf, io_uring, kexec, modules, open_by_handle_at — the "shocker"
//!   escape —, syslog, acct, swap, reboot, clock setting, quotas, vhangup);
//! - every way to change the mount tree (mount, umount2, pivot_root, chroot and the
//!   new mount API), to join or make namespaces (setns; unshare and clone with a
//!   CLONE_NEW* flag), and to inspect other processes (ptrace, process_vm_*);
//! - `personality` with anything but the harmless values, and `ioctl` TIOCSTI and
//!   TIOCLINUX, compared on the low 32 bits of the request because the tty layer
//!   truncates it (CVE-2019-10063; CVE-2017-5226 is the injection itself). Unlike
//!   `setsid()` (bwrap's `--new-session`), this keeps the controlling terminal, so an
//!   interactive shell keeps job control.
//!
//! `clone3` gets ENOSYS: its flags live in memory a filter cannot read, and libc falls
//! back to `clone`, whose flags it can. The x32 ABI (numbers with bit 30 set) is
//! refused and foreign architectures (the i386 `int 0x80` entry) are killed, so
//! neither can go around the rules. Syscalls the filter allows without looking at
//! their arguments are served from the kernel's per-syscall action cache.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Default,
    /// The default policy, plus rare and legacy syscalls with a history of kernel
    /// bugs and sockets of families other than unix, inet, inet6 and netlink.
    Strict,
    /// No filter at all: announced on stderr.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompPlan {
    pub mode: Mode,
    /// Syscalls refused outright, by name and number (this architecture's).
    pub deny: Vec<(String, u32)>,
    /// ioctl requests refused, by name and low-32-bit value.
    pub deny_ioctl: Vec<(String, u32)>,
    /// `unshare`/`clone` with any of these flags are refused (0: namespaces allowed).
    pub deny_namespace_flags: u32,
    /// `personality` limited to the harmless values.
    pub restrict_personality: bool,
    /// `clone3` answered ENOSYS (its flags cannot be inspected).
    pub clone3_enosys: bool,
    /// `socket` only for these address families (EAFNOSUPPORT for the rest, as a
    /// kernel without them answers); empty: any family.
    pub socket_families: Vec<(String, u32)>,
}

pub const TIOCSTI: u32 = 0x5412;
pub const TIOCLINUX: u32 = 0x541C;

/// ioctls refused on every descriptor, compared on the low 32 bits of the request
/// (the tty layer ignores the high bits, CVE-2019-10063's lesson). TIOCSTI and
/// TIOCLINUX inject input (bubblewrap CVE-2017-5226). The rest change a terminal's
/// state for whoever uses it after the sandbox: the user's shell, once sbx returns,
/// or the terminal `--enter` was run from. A line discipline (TIOCSETD: N_NULL
/// swallows every keystroke), exclusive mode (TIOCEXCL: every later open fails with
/// EBUSY), console redirection (TIOCCONS), a hang-up (TIOCVHANGUP), the serial line
/// and modem lines (TIOCSSERIAL, TIOCMSET, TIOCMBIC: dropping DTR hangs the line up),
/// and, on a virtual console, its mode, keyboard, font and the active console
/// (KD*, VT_*, PIO_FONT*: a console left in graphics or raw-keyboard mode is
/// unusable). termios settings and file status flags are not in this list: the
/// launcher restores them when the sandbox ends (see `tty`).
pub const TERMINAL_IOCTLS: [(&str, u32); 21] = [
    ("TIOCSTI", TIOCSTI),
    ("TIOCLINUX", TIOCLINUX),
    ("TIOCSETD", 0x5423),
    ("TIOCEXCL", 0x540C),
    ("TIOCCONS", 0x541D),
    ("TIOCVHANGUP", 0x5437),
    ("TIOCSSERIAL", 0x541F),
    ("TIOCMSET", 0x5418),
    ("TIOCMBIC", 0x5417),
    ("KDSETMODE", 0x4B3A),
    ("KDSKBMODE", 0x4B45),
    ("KDSKBMETA", 0x4B63),
    ("KDSKBENT", 0x4B47),
    ("KDSETKEYCODE", 0x4B4D),
    ("KDFONTOP", 0x4B72),
    ("PIO_FONT", 0x4B61),
    ("PIO_FONTX", 0x4B6C),
    ("VT_ACTIVATE", 0x5606),
    ("VT_SETMODE", 0x5602),
    ("VT_LOCKSWITCH", 0x560B),
    ("VT_DISALLOCATE", 0x5608),
];

/// The default deny-list, by family (names as in syscalls(2)); a name this
/// architecture lacks is skipped. A test checks each family against the syscall
/// tables of x86_64 and aarch64, so a call the kernel adds to a family (as
/// `open_tree_attr` joined the mount calls in 6.15, `quotactl_fd` the quota ones in
/// 5.14) cannot be left out.
pub const DENIED: &[&str] = &[
    // keyrings
    "add_key",
    "keyctl",
    "request_key",
    // kernel programs, page-fault handlers, the perf interface, io_uring
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // loading kernels and modules
    "kexec_load",
    "kexec_file_load",
    "create_module",
    "init_module",
    "finit_module",
    "delete_module",
    "query_module",
    // file handles reach past the mount tree
    "open_by_handle_at",
    // the host's log, accounting, swap, power, clocks
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    // the mount tree
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "mount_setattr",
    // other namespaces, other processes
    "setns",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    // quotas
    "quotactl",
    "quotactl_fd",
    // the rest
    "lookup_dcookie",
    "vhangup",
];

/// Added by `strict`: syscalls ordinary programs do not make, several of them the
/// entry point of past kernel escapes (modify_ldt: CVE-2015-5157 family; kcmp and
/// pidfd_getfd reach into other processes; name_to_handle_at is the other half of
/// open_by_handle_at; the NUMA page movers and remap_file_pages are rarely used and
/// often buggy). Names missing on this architecture are skipped.
const STRICT_DENIED: &[&str] = &[
    "modify_ldt",
    "iopl",
    "ioperm",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "kcmp",
    "name_to_handle_at",
    "pidfd_getfd",
    "process_madvise",
    "move_pages",
    "migrate_pages",
    "mbind",
    "fanotify_init",
    "remap_file_pages",
    "memfd_secret",
];

/// `strict`: the socket families programs use (AF_NETLINK for getaddrinfo's
/// interface query); AF_PACKET, AF_ALG, AF_VSOCK, AF_BLUETOOTH, AF_KEY and the rest
/// are where many socket-layer CVEs live.
const STRICT_FAMILIES: [(&str, u32); 4] = [
    ("AF_UNIX", libc::AF_UNIX as u32),
    ("AF_INET", libc::AF_INET as u32),
    ("AF_INET6", libc::AF_INET6 as u32),
    ("AF_NETLINK", libc::AF_NETLINK as u32),
];

const NAMESPACE_FLAGS: u32 = crate::namespace::ALL_FLAGS as u32;

/// `personality` values that change nothing a sandbox cares about: PER_LINUX, the
/// UNAME26 and ADDR_NO_RANDOMIZE flags (as Docker's default profile), and the query.
const HARMLESS_PERSONALITIES: [u32; 5] = [0x0, 0x0008, 0x2_0000, 0x2_0008, 0xFFFF_FFFF];

/// A `seccomp_allow` or `seccomp_deny` entry refused: the name as written, and why.
#[derive(Debug)]
pub struct ListError {
    pub name: String,
    pub detail: String,
}

impl SeccompPlan {
    pub fn default_policy() -> SeccompPlan {
        SeccompPlan {
            mode: Mode::Default,
            deny: DENIED
                .iter()
                .filter_map(|n| Some((n.to_string(), crate::syscall_table::number(n)?)))
                .collect(),
            deny_ioctl: TERMINAL_IOCTLS
                .iter()
                .map(|(n, r)| (n.to_string(), *r))
                .collect(),
            deny_namespace_flags: NAMESPACE_FLAGS,
            restrict_personality: true,
            clone3_enosys: true,
            socket_families: Vec::new(),
        }
    }

    pub fn strict_policy() -> SeccompPlan {
        let mut p = SeccompPlan::default_policy();
        p.mode = Mode::Strict;
        for name in STRICT_DENIED {
            if let Some(nr) = crate::syscall_table::number(name) {
                p.deny.push((name.to_string(), nr));
            }
        }
        p.socket_families = STRICT_FAMILIES
            .iter()
            .map(|(n, f)| (n.to_string(), *f))
            .collect();
        p
    }

    /// One line for `-v`: what is enforced.
    pub fn summary(&self) -> String {
        match self.mode {
            Mode::Off => "seccomp: off".into(),
            m => format!(
                "seccomp: {} policy, {} syscalls refused{}{}{}, ioctl {} refused{}{}",
                if m == Mode::Strict {
                    "strict"
                } else {
                    "default"
                },
                self.deny.len(),
                if self.deny_namespace_flags != 0 {
                    ", no namespace creation"
                } else {
                    ", namespaces allowed"
                },
                if self.clone3_enosys {
                    ", clone3 ENOSYS"
                } else {
                    ""
                },
                if self.restrict_personality {
                    ", personality limited"
                } else {
                    ""
                },
                {
                    let names: Vec<&str> =
                        self.deny_ioctl.iter().map(|(n, _)| n.as_str()).collect();
                    match names.len() {
                        0..=2 => names.join("/"),
                        n => format!(
                            "{} and {} more that change a terminal's state ({}, …)",
                            names[..2].join("/"),
                            n - 2,
                            names[2..4.min(n)].join(", ")
                        ),
                    }
                },
                if self.socket_families.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", sockets only {}",
                        self.socket_families
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join("/")
                    )
                },
                if cfg!(target_arch = "x86_64") {
                    ", x32 refused, i386 entry killed"
                } else {
                    ", foreign architectures killed"
                }
            ),
        }
    }

    /// The default policy adjusted by a profile's allow and deny lists. Names are
    /// checked against this architecture's syscall table. `ioctl` cannot be allowed
    /// (the terminal-injection rule stays); allowing `unshare` or `clone` allows
    /// namespace creation through both (one rule covers them) and `clone3` with it.
    /// The policy with a profile's `seccomp_allow` and `seccomp_deny` applied; Err:
    /// the entry refused, and why.
    pub fn with_lists(
        strict: bool,
        allow: &[&str],
        deny: &[&str],
    ) -> Result<SeccompPlan, ListError> {
        let refused = |name: &str, detail: String| ListError {
            name: name.to_string(),
            detail,
        };
        let mut p = if strict {
            SeccompPlan::strict_policy()
        } else {
            SeccompPlan::default_policy()
        };
        for name in allow {
            let nr = crate::syscall_table::number(name).ok_or_else(|| {
                refused(name, format!("unknown syscall {name:?} in seccomp_allow"))
            })?;
            match *name {
                "ioctl" => {
                    return Err(refused(
                        name,
                        "seccomp_allow: ioctl cannot be allowed (the terminal rule, TIOCSTI, \
                         TIOCSETD, TIOCEXCL and the rest, stays)"
                            .into(),
                    ))
                }
                "unshare" | "clone" | "clone3" => {
                    p.deny_namespace_flags = 0;
                    p.clone3_enosys = false;
                }
                "personality" => p.restrict_personality = false,
                "socket" => p.socket_families.clear(),
                _ => {}
            }
            p.deny.retain(|(_, n)| *n != nr);
        }
        for name in deny {
            let nr = crate::syscall_table::number(name).ok_or_else(|| {
                refused(name, format!("unknown syscall {name:?} in seccomp_deny"))
            })?;
            if !p.deny.iter().any(|(_, n)| *n == nr) {
                p.deny.push((name.to_string(), nr));
            }
        }
        Ok(p)
    }

    pub fn off() -> SeccompPlan {
        SeccompPlan {
            mode: Mode::Off,
            deny: Vec::new(),
            deny_ioctl: Vec::new(),
            deny_namespace_flags: 0,
            restrict_personality: false,
            clone3_enosys: false,
            socket_families: Vec::new(),
        }
    }
}

impl Default for SeccompPlan {
    fn default() -> Self {
        SeccompPlan::default_policy()
    }
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_ALLOW: u32 = 0x7FFF_0000;

// struct seccomp_data: nr @0, arch @4, instruction_pointer @8, args[6] @16; the low
// 32 bits of an argument come first on both supported (little-endian) targets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

pub type Program = Vec<libc::sock_filter>;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Label {
    Next,
    /// Skip this many instructions.
    Skip(u8),
    /// A place in the program, numbered as it is made.
    At(u32),
}

enum Ins {
    Load(u32),
    Jump(u16, u32, Label, Label),
    /// Unconditional, with a 32-bit offset: the one way past 255 instructions.
    Ja(Label),
    Ret(u32),
    Mark(Label),
}

/// Resolve labels into the relative offsets classic BPF uses (from the next
/// instruction; at most 255 ahead for a conditional jump, which `build` keeps local).
fn assemble(code: &[Ins]) -> Program {
    let mut at = std::collections::HashMap::new();
    let mut pc = 0;
    for i in code {
        match i {
            Ins::Mark(l) => {
                at.insert(*l, pc);
            }
            _ => pc += 1,
        }
    }
    let mut out = Vec::with_capacity(pc);
    for i in code {
        let here = out.len();
        let rel = |l: Label| -> u32 {
            match l {
                Label::Next => 0,
                Label::Skip(n) => n.into(),
                l => {
                    let target: usize = at[&l];
                    assert!(target > here, "classic BPF jumps only forward ({l:?})");
                    (target - here - 1) as u32
                }
            }
        };
        let short = |l: Label| -> u8 {
            u8::try_from(rel(l)).expect("conditional BPF jumps reach 255 instructions")
        };
        out.push(match i {
            Ins::Load(k) => libc::sock_filter {
                code: LD_ABS_W,
                jt: 0,
                jf: 0,
                k: *k,
            },
            Ins::Jump(op, k, t, f) => libc::sock_filter {
                code: *op,
                jt: short(*t),
                jf: short(*f),
                k: *k,
            },
            Ins::Ja(l) => libc::sock_filter {
                code: JA,
                jt: 0,
                jf: 0,
                k: rel(*l),
            },
            Ins::Ret(k) => libc::sock_filter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: *k,
            },
            Ins::Mark(_) => continue,
        });
    }
    out
}

/// What a syscall gets when it is not simply allowed.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Eperm,
    Enosys,
    /// Refused requests (the low 32 bits of argument 1).
    Ioctl,
    /// unshare(flags) and clone(flags, ...): no namespace flag in argument 0.
    NsFlags,
    Personality,
    Socket,
}

/// Label numbers, handed out as the program is written.
struct Labels(u32);

impl Labels {
    fn next(&mut self) -> Label {
        self.0 += 1;
        Label::At(self.0)
    }
}

const EPERM_RET: u32 = RET_ERRNO | libc::EPERM as u32;

/// The verdict of one syscall whose number is in the accumulator. Every jump here is
/// a few instructions long, whatever the size of the rest of the program.
fn rule_block(c: &mut Vec<Ins>, plan: &SeccompPlan, rule: Rule, labels: &mut Labels) {
    use Ins::*;
    // (values to compare, argument, verdict on a match, verdict otherwise)
    let (values, arg, on_match, otherwise): (Vec<u32>, u32, u32, u32) = match rule {
        Rule::Eperm => return c.push(Ret(EPERM_RET)),
        Rule::Enosys => return c.push(Ret(RET_ERRNO | libc::ENOSYS as u32)),
        Rule::NsFlags => {
            c.push(Load(arg_lo(0)));
            c.push(Jump(
                JSET_K,
                plan.deny_namespace_flags,
                Label::Skip(1),
                Label::Next,
            ));
            c.push(Ret(RET_ALLOW));
            return c.push(Ret(EPERM_RET));
        }
        Rule::Ioctl => (
            plan.deny_ioctl.iter().map(|(_, r)| *r).collect(),
            1,
            EPERM_RET,
            RET_ALLOW,
        ),
        Rule::Personality => (HARMLESS_PERSONALITIES.to_vec(), 0, RET_ALLOW, EPERM_RET),
        Rule::Socket => (
            plan.socket_families.iter().map(|(_, f)| *f).collect(),
            0,
            RET_ALLOW,
            RET_ERRNO | libc::EAFNOSUPPORT as u32,
        ),
    };
    let matched = labels.next();
    c.push(Load(arg_lo(arg)));
    let mut values = values;
    values.sort_unstable();
    values.dedup();
    value_tree(c, &values, matched, otherwise, labels);
    c.push(Mark(matched));
    c.push(Ret(on_match));
}

/// A binary search of the loaded argument over sorted `values`: a match jumps to
/// `matched`, anything else returns `otherwise`. Every ioctl pays this path (an
/// argument check cannot be cached), so 21 terminal ioctls cost 6 tests, not 21.
fn value_tree(
    c: &mut Vec<Ins>,
    values: &[u32],
    matched: Label,
    otherwise: u32,
    labels: &mut Labels,
) {
    if values.len() <= 3 {
        for v in values {
            c.push(Ins::Jump(JEQ_K, *v, matched, Label::Next));
        }
        c.push(Ins::Ret(otherwise));
        return;
    }
    let mid = values.len() / 2;
    let right = labels.next();
    c.push(Ins::Jump(JGE_K, values[mid], right, Label::Next));
    value_tree(c, &values[..mid], matched, otherwise, labels);
    c.push(Ins::Mark(right));
    value_tree(c, &values[mid..], matched, otherwise, labels);
}

/// A balanced binary search over `entries` (sorted by syscall number), each leaf a
/// few equality tests, their verdicts, and an allow. The kernel runs a new filter
/// once for every syscall number when it is installed, to fill its action cache
/// (seccomp_cache_prepare in kernel/seccomp.c), so the install costs numbers × the
/// instructions on the path: a 56-instruction chain took 72 µs here, a tree of the
/// same rules 30 µs. The path is also what every argument-checked syscall (ioctl,
/// clone, socket) pays at run time.
fn search_tree(c: &mut Vec<Ins>, plan: &SeccompPlan, entries: &[(u32, Rule)], labels: &mut Labels) {
    if entries.len() <= 3 {
        for (nr, rule) in entries {
            let other = labels.next();
            c.push(Ins::Jump(JEQ_K, *nr, Label::Next, other));
            rule_block(c, plan, *rule, labels);
            c.push(Ins::Mark(other));
        }
        c.push(Ins::Ret(RET_ALLOW));
        return;
    }
    let mid = entries.len() / 2;
    let right = labels.next();
    // The right half may lie past a conditional jump's reach: go there by `ja`.
    c.push(Ins::Jump(
        JGE_K,
        entries[mid].0,
        Label::Next,
        Label::Skip(1),
    ));
    c.push(Ins::Ja(right));
    search_tree(c, plan, &entries[..mid], labels);
    c.push(Ins::Mark(right));
    search_tree(c, plan, &entries[mid..], labels);
}

/// Assemble the filter for `plan` (empty for `Mode::Off`).
pub fn build(plan: &SeccompPlan) -> Program {
    if plan.mode == Mode::Off {
        return Vec::new();
    }
    use Ins::*;
    let mut c = vec![
        Load(OFF_ARCH),
        // Any other architecture, the i386 entry (`int 0x80`) included, is killed.
        Jump(JEQ_K, AUDIT_ARCH, Label::Skip(1), Label::Next),
        Ret(RET_KILL_PROCESS),
        Load(OFF_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        c.push(Jump(JGE_K, X32_SYSCALL_BIT, Label::Next, Label::Skip(1)));
        c.push(Ret(EPERM_RET));
    }
    // Every syscall whose verdict is not a plain allow, by number. The deny list comes
    // first, so a profile that denies ioctl or clone outright is not weakened by the
    // argument rules.
    let mut special = std::collections::BTreeMap::new();
    for (_, nr) in &plan.deny {
        special.entry(*nr).or_insert(Rule::Eperm);
    }
    let ns = plan.deny_namespace_flags != 0;
    for (on, nr, rule) in [
        (plan.clone3_enosys, libc::SYS_clone3, Rule::Enosys),
        (true, libc::SYS_ioctl, Rule::Ioctl),
        (ns, libc::SYS_unshare, Rule::NsFlags),
        (ns, libc::SYS_clone, Rule::NsFlags),
        (
            plan.restrict_personality,
            libc::SYS_personality,
            Rule::Personality,
        ),
        (
            !plan.socket_families.is_empty(),
            libc::SYS_socket,
            Rule::Socket,
        ),
    ] {
        if on {
            special.entry(nr as u32).or_insert(rule);
        }
    }
    let special: Vec<(u32, Rule)> = special.into_iter().collect();
    search_tree(&mut c, plan, &special, &mut Labels(0));
    assemble(&c)
}

/// Install `prog` for this thread. Requires no_new_privs (or CAP_SYS_ADMIN).
pub fn install(prog: &Program) -> Result<(), i32> {
    if prog.is_empty() {
        return Ok(());
    }
    // sock_fprog's length is 16 bits: a longer program would be cut, and a cut
    // program ends anywhere. (The kernel's own limit, BPF_MAXINSNS, is 4096.)
    let Ok(len) = u16::try_from(prog.len()) else {
        return Err(libc::E2BIG);
    };
    crate::sys::seccomp_filter(prog, len)
}

/// A classic-BPF interpreter for the subset `build` emits, for unit tests: the policy
/// is tested rule by rule without loading it.
#[cfg(test)]
pub fn run(prog: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    interpret(prog, arch, nr, args).0
}

/// How many instructions the filter runs for this call.
#[cfg(test)]
pub fn steps(prog: &Program, arch: u32, nr: u32, args: [u64; 6]) -> usize {
    interpret(prog, arch, nr, args).1
}

#[cfg(test)]
fn interpret(prog: &Program, arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let ins = prog[pc];
        pc += 1;
        steps += 1;
        if ins.code == RET_K {
            return (ins.k, steps);
        }
        match ins.code {
            LD_ABS_W => {
                let k = ins.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            JA => pc += ins.k as usize,
            JEQ_K | JGE_K | JSET_K => {
                let taken = match ins.code {
                    JEQ_K => acc == ins.k,
                    JGE_K => acc >= ins.k,
                    _ => acc & ins.k != 0,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    /// A program too long for sock_fprog's 16-bit length is refused, never cut
    /// (and never reaches prctl: this thread stays unfiltered).
    #[test]
    fn a_program_longer_than_its_length_field_is_refused() {
        let ins = libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        };
        assert_eq!(install(&vec![ins; 65_536]), Err(libc::E2BIG));
        assert_eq!(install(&vec![ins; 70_000]), Err(libc::E2BIG));
    }

    fn verdict(nr: i64, args: [u64; 6]) -> u32 {
        run(&build(&SeccompPlan::default()), AUDIT_ARCH, nr as u32, args)
    }

    fn ioctl(req: u64) -> u32 {
        verdict(libc::SYS_ioctl, [0, req, 0, 0, 0, 0])
    }

    #[test]
    fn every_denied_syscall_gets_eperm() {
        let plan = SeccompPlan::default_policy();
        for (name, nr) in &plan.deny {
            assert_eq!(verdict(*nr as i64, [0; 6]), EPERM, "{name}");
        }
        assert!(plan.deny.len() >= 46, "{}", plan.deny.len());
    }

    /// Each family the deny-list covers, as a rule over names, checked against the
    /// whole syscall table of x86_64 and of aarch64: every member is on the list.
    #[test]
    fn the_deny_list_names_every_member_of_its_families() {
        use std::str::FromStr;
        type Member = fn(&str) -> bool;
        let families: [(&str, Member); 10] = [
            ("keyrings", |n| n.ends_with("_key") || n == "keyctl"),
            ("io_uring", |n| n.starts_with("io_uring_")),
            ("kexec", |n| n.starts_with("kexec_")),
            ("modules", |n| n.ends_with("_module")),
            ("mount", |n| {
                n.contains("mount") && !matches!(n, "listmount" | "statmount")
                    || n.starts_with("open_tree")
                    || matches!(
                        n,
                        "fsopen" | "fsconfig" | "fspick" | "pivot_root" | "chroot"
                    )
            }),
            ("file handles", |n| n == "open_by_handle_at"),
            ("swap", |n| n.starts_with("swapo")),
            ("clocks", |n| {
                matches!(
                    n,
                    "settimeofday" | "stime" | "clock_settime" | "clock_adjtime" | "adjtimex"
                )
            }),
            ("process memory", |n| {
                n.starts_with("process_vm_") || n == "ptrace"
            }),
            ("quotas", |n| n.starts_with("quotactl")),
        ];
        let x86_64: Vec<&str> = (0..1024)
            .filter_map(syscalls::x86_64::Sysno::new)
            .map(|s| s.name())
            .collect();
        let aarch64: Vec<&str> = (0..1024)
            .filter_map(syscalls::aarch64::Sysno::new)
            .map(|s| s.name())
            .collect();
        assert!(x86_64.contains(&"open_tree_attr") && aarch64.contains(&"open_tree_attr"));
        for (family, member) in families {
            for name in x86_64.iter().chain(&aarch64).filter(|n| member(n)) {
                assert!(
                    DENIED.contains(name),
                    "{family}: {name} is not on the deny-list"
                );
            }
        }
        // Every name on the list exists on one of the two, and the families the
        // listing checks are not empty there.
        for name in DENIED {
            assert!(
                syscalls::x86_64::Sysno::from_str(name).is_ok()
                    || syscalls::aarch64::Sysno::from_str(name).is_ok(),
                "{name} is on neither table"
            );
        }
    }

    #[test]
    fn ordinary_syscalls_are_allowed() {
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_getppid,
            libc::SYS_wait4,
            libc::SYS_socket,
            libc::SYS_mmap,
        ] {
            assert_eq!(verdict(nr, [0; 6]), RET_ALLOW, "{nr}");
        }
    }

    #[test]
    fn tiocsti_and_tioclinux_are_refused_on_the_low_32_bits() {
        assert_eq!(ioctl(TIOCSTI as u64), EPERM);
        assert_eq!(ioctl(TIOCLINUX as u64), EPERM);
        assert_eq!(ioctl((1 << 32) | TIOCSTI as u64), EPERM);
        assert_eq!(ioctl(0xFFFF_FFFF_0000_0000 | TIOCLINUX as u64), EPERM);
        assert_eq!(ioctl(libc::TIOCGWINSZ), RET_ALLOW);
        assert_eq!(ioctl(libc::TIOCSPGRP), RET_ALLOW, "job control");
        for (name, req) in TERMINAL_IOCTLS {
            assert_eq!(ioctl(req as u64), EPERM, "{name}");
            assert_eq!(
                ioctl((7 << 32) | req as u64),
                EPERM,
                "{name} with high bits"
            );
        }
        // What a shell and a full-screen program need stays allowed.
        for req in [
            libc::TCGETS,
            libc::TCSETS,
            libc::TCSETSW,
            libc::TIOCGWINSZ,
            libc::TIOCSWINSZ,
            libc::TIOCGPGRP,
            libc::TIOCNXCL,
            libc::FIONREAD,
        ] {
            assert_eq!(ioctl(req), RET_ALLOW, "{req:#x}");
        }
    }

    #[test]
    fn namespaces_cannot_be_made_but_threads_and_forks_can() {
        assert_eq!(
            verdict(
                libc::SYS_unshare,
                [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(
            verdict(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            verdict(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD) as u64;
        assert_eq!(verdict(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            verdict(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            verdict(
                libc::SYS_clone,
                [(libc::CLONE_NEWPID | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(
            verdict(libc::SYS_clone3, [0; 6]),
            ENOSYS,
            "libc falls back to clone"
        );
        assert_eq!(verdict(libc::SYS_setns, [0; 6]), EPERM);
    }

    #[test]
    fn only_harmless_personalities() {
        for p in HARMLESS_PERSONALITIES {
            assert_eq!(
                verdict(libc::SYS_personality, [p as u64, 0, 0, 0, 0, 0]),
                RET_ALLOW,
                "{p:#x}"
            );
        }
        // READ_IMPLIES_EXEC, and PER_LINUX32.
        assert_eq!(
            verdict(libc::SYS_personality, [0x0400000, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            verdict(libc::SYS_personality, [0x0008 | 0x0400000, 0, 0, 0, 0, 0]),
            EPERM
        );
    }

    #[test]
    fn foreign_arch_is_killed() {
        let p = build(&SeccompPlan::default());
        assert_eq!(
            run(&p, 0x4000_0003, 54, [0, TIOCSTI as u64, 0, 0, 0, 0]),
            RET_KILL_PROCESS
        ); // i386
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_syscalls_are_refused() {
        assert_eq!(
            verdict(
                (X32_SYSCALL_BIT | 514) as i64,
                [0, TIOCSTI as u64, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(verdict(X32_SYSCALL_BIT as i64, [0; 6]), EPERM);
    }

    #[test]
    fn profile_lists_adjust_the_policy() {
        let p = SeccompPlan::with_lists(false, &["ptrace", "unshare"], &["getppid"]).unwrap();
        let prog = build(&p);
        let v = |nr: i64, a0: u64| run(&prog, AUDIT_ARCH, nr as u32, [a0, 0, 0, 0, 0, 0]);
        assert_eq!(v(libc::SYS_ptrace, 0), RET_ALLOW);
        assert_eq!(v(libc::SYS_unshare, libc::CLONE_NEWUSER as u64), RET_ALLOW);
        assert_eq!(v(libc::SYS_clone3, 0), RET_ALLOW);
        assert_eq!(v(libc::SYS_getppid, 0), EPERM);
        assert_eq!(v(libc::SYS_bpf, 0), EPERM, "the rest of the default stays");
        assert_eq!(
            run(
                &prog,
                AUDIT_ARCH,
                libc::SYS_ioctl as u32,
                [0, TIOCSTI as u64, 0, 0, 0, 0]
            ),
            EPERM
        );
        // Each refusal names the entry as written (the plan finds its profile line by it).
        for (allow, deny, name) in [
            (&["ioctl"][..], &[][..], "ioctl"),
            (&["no_such_call"], &[], "no_such_call"),
            (&[], &["nope"], "nope"),
        ] {
            let e = SeccompPlan::with_lists(false, allow, deny).unwrap_err();
            assert_eq!(e.name, name);
            assert!(e.detail.contains(name), "{}", e.detail);
        }
        let p = SeccompPlan::with_lists(false, &["personality"], &[]).unwrap();
        assert_eq!(
            run(
                &build(&p),
                AUDIT_ARCH,
                libc::SYS_personality as u32,
                [0x0400000, 0, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
    }

    #[test]
    fn strict_adds_rare_syscalls_and_limits_socket_families() {
        let p = SeccompPlan::with_lists(true, &[], &[]).unwrap();
        assert_eq!(p.mode, Mode::Strict);
        let prog = build(&p);
        let v = |nr: i64, a0: u64| run(&prog, AUDIT_ARCH, nr as u32, [a0, 0, 0, 0, 0, 0]);
        for nr in [
            libc::SYS_kcmp,
            libc::SYS_pidfd_getfd,
            libc::SYS_name_to_handle_at,
        ] {
            assert_eq!(v(nr, 0), EPERM, "{nr}");
        }
        assert_eq!(v(libc::SYS_bpf, 0), EPERM, "the default stays");
        let eafnosupport = RET_ERRNO | libc::EAFNOSUPPORT as u32;
        for af in [
            libc::AF_UNIX,
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
        ] {
            assert_eq!(v(libc::SYS_socket, af as u64), RET_ALLOW, "{af}");
        }
        for af in [libc::AF_PACKET, libc::AF_ALG, libc::AF_VSOCK, libc::AF_KEY] {
            assert_eq!(v(libc::SYS_socket, af as u64), eafnosupport, "{af}");
        }
        // High bits of the family do not slip past the compare.
        assert_eq!(
            v(libc::SYS_socket, (1 << 32) | libc::AF_PACKET as u64),
            eafnosupport
        );
        assert_eq!(v(libc::SYS_getpid, 0), RET_ALLOW);
        // The lists apply on top: allowing `socket` lifts the family rule.
        let p = SeccompPlan::with_lists(true, &["socket", "kcmp"], &[]).unwrap();
        let prog = build(&p);
        assert_eq!(
            run(
                &prog,
                AUDIT_ARCH,
                libc::SYS_socket as u32,
                [libc::AF_PACKET as u64, 0, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(&prog, AUDIT_ARCH, libc::SYS_kcmp as u32, [0; 6]),
            RET_ALLOW
        );
        // The default policy leaves sockets alone.
        let d = build(&SeccompPlan::default());
        assert_eq!(
            run(
                &d,
                AUDIT_ARCH,
                libc::SYS_socket as u32,
                [libc::AF_PACKET as u64, 0, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
    }

    #[test]
    fn off_means_no_filter() {
        assert!(build(&SeccompPlan::off()).is_empty());
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = build(&SeccompPlan::default());
        for (i, ins) in p
            .iter()
            .enumerate()
            .filter(|(_, ins)| [JEQ_K, JGE_K, JSET_K].contains(&ins.code))
        {
            assert!(i + 1 + (ins.jt as usize) < p.len());
            assert!(i + 1 + (ins.jf as usize) < p.len());
        }
        for (i, ins) in p.iter().enumerate().filter(|(_, ins)| ins.code == JA) {
            assert!(i + 1 + (ins.k as usize) < p.len());
        }
    }

    #[test]
    fn a_long_deny_list_assembles_and_holds() {
        // Hundreds of denied numbers put the tree's right halves past the 255
        // instructions a conditional jump reaches: they are reached by `ja`.
        let mut plan = SeccompPlan::strict_policy();
        plan.deny.extend(
            (0..400u32)
                .filter(|n| n % 3 == 0)
                .map(|n| (format!("n{n}"), n)),
        );
        let p = build(&plan);
        assert!(p.len() > 300, "{} instructions", p.len());
        for nr in 0..450u32 {
            let args = [libc::AF_UNIX as u64, 0, 0, 0, 0, 0];
            let denied = plan.deny.iter().any(|(_, d)| *d == nr);
            let got = run(&p, AUDIT_ARCH, nr, args);
            assert_eq!(got == EPERM, denied, "syscall {nr}: {got:#x}");
        }
        assert!((0..450).map(|nr| steps(&p, AUDIT_ARCH, nr, [0; 6])).max() <= Some(32));
    }

    #[test]
    fn every_syscall_number_takes_a_short_path() {
        // The kernel runs the filter for each number at install time (the action
        // cache): a short path keeps the install cheap (search_tree's comment).
        for plan in [SeccompPlan::default(), SeccompPlan::strict_policy()] {
            let p = build(&plan);
            let longest = (0..1024)
                .map(|nr| steps(&p, AUDIT_ARCH, nr, [0; 6]))
                .max()
                .unwrap();
            // (As one chain of tests the longest path was over 60.)
            assert!(longest <= 20, "{longest} instructions on the longest path");
        }
    }

    #[test]
    fn the_tree_gives_every_number_its_rule() {
        // A reference reading of the plan, rule by rule, against the assembled tree for
        // every number (arguments that the argument rules allow).
        let plan = SeccompPlan::strict_policy();
        let p = build(&plan);
        for nr in 0..1024u32 {
            let want = if plan.deny.iter().any(|(_, d)| *d == nr) {
                EPERM
            } else if nr == libc::SYS_clone3 as u32 {
                ENOSYS
            } else {
                RET_ALLOW
            };
            let args = if nr == libc::SYS_socket as u32 {
                [libc::AF_UNIX as u64, 0, 0, 0, 0, 0]
            } else {
                [0; 6]
            };
            assert_eq!(run(&p, AUDIT_ARCH, nr, args), want, "syscall {nr}");
        }
    }
}

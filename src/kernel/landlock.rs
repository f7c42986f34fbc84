//! Landlock (landlock(7)): the last line of the filesystem boundary, and the scopes.
//!
//! The mount tree already decides what exists inside; Landlock makes the same decision
//! a second time on the command's own credentials, so that what reaches the command
//! *around* the mount tree is confined too: a directory fd passed in over a unix
//! socket by a host process, `open_by_handle_at`, a magic link. Rules are derived from
//! the plan's mounts: read-only binds get read/execute, writable binds and tmpfs get
//! write, device binds and `/dev` get device ioctls. A path outside every rule (any
//! file reached through a descriptor from another mount namespace) gets nothing.
//!
//! Scopes (ABI 6): the command may not signal processes outside its domain nor
//! connect to abstract unix sockets created outside it. This keeps `kill(0)` from
//! reaching the caller's process group (the command shares it so that an interactive
//! shell keeps job control) and host services on abstract sockets (X11, D-Bus) out of
//! reach even with `--net host`.
//!
//! The ABI is pinned at 6: the rights below are those of ABI 6, whatever newer kernel
//! runs sbx, so a kernel upgrade never changes what a profile means. On an older
//! kernel the plan keeps what that kernel handles and says what is missing (best
//! effort, never silent); `landlock = "require"` or `--require landlock` makes any
//! missing part an error.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys;

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;

/// The ABI whose semantics sbx applies (see the module comment).
pub const PINNED_ABI: i64 = 6;
/// The first ABI with scopes.
pub const SCOPES_ABI: i64 = 6;
/// The first ABI with TCP port rules.
pub const NET_ABI: i64 = 4;

pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const REMOVE_DIR: u64 = 1 << 4;
pub const REMOVE_FILE: u64 = 1 << 5;
pub const MAKE_CHAR: u64 = 1 << 6;
pub const MAKE_DIR: u64 = 1 << 7;
pub const MAKE_REG: u64 = 1 << 8;
pub const MAKE_SOCK: u64 = 1 << 9;
pub const MAKE_FIFO: u64 = 1 << 10;
pub const MAKE_BLOCK: u64 = 1 << 11;
pub const MAKE_SYM: u64 = 1 << 12;
pub const REFER: u64 = 1 << 13;
pub const TRUNCATE: u64 = 1 << 14;
pub const IOCTL_DEV: u64 = 1 << 15;

const FS_NAMES: [(u64, &str); 16] = [
    (EXECUTE, "execute"),
    (WRITE_FILE, "write-file"),
    (READ_FILE, "read-file"),
    (READ_DIR, "read-dir"),
    (REMOVE_DIR, "remove-dir"),
    (REMOVE_FILE, "remove-file"),
    (MAKE_CHAR, "make-char"),
    (MAKE_DIR, "make-dir"),
    (MAKE_REG, "make-reg"),
    (MAKE_SOCK, "make-sock"),
    (MAKE_FIFO, "make-fifo"),
    (MAKE_BLOCK, "make-block"),
    (MAKE_SYM, "make-sym"),
    (REFER, "refer"),
    (TRUNCATE, "truncate"),
    (IOCTL_DEV, "ioctl-dev"),
];

const BIND_TCP: u64 = 1 << 0;
const CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// Rights that apply to a file that is not a directory (landlock_add_rule refuses
/// directory rights on one).
pub const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
/// Read-only binds: read and execute.
pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
/// Writable binds and tmpfs: everything but creating device nodes.
pub const WRITE: u64 = READ
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE;
/// Device binds: writable, plus ioctls on the devices.
pub const DEVICE: u64 = WRITE | IOCTL_DEV;

/// The filesystem rights each ABI handles.
pub fn fs_rights(abi: i64) -> u64 {
    let mut r = (1 << 13) - 1;
    if abi >= 2 {
        r |= REFER;
    }
    if abi >= 3 {
        r |= TRUNCATE;
    }
    if abi >= 5 {
        r |= IOCTL_DEV;
    }
    r
}

pub fn names(rights: u64) -> Vec<&'static str> {
    FS_NAMES
        .iter()
        .filter(|(b, _)| rights & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

fn rights_names<S: Serializer>(r: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(names(*r))
}

fn rights_from_names<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v: Vec<String> = Vec::deserialize(d)?;
    v.iter().try_fold(0, |acc, n| {
        FS_NAMES
            .iter()
            .find(|(_, name)| name == n)
            .map(|(b, _)| acc | b)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown Landlock right {n:?}")))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Applied as far as the kernel allows; what is missing is announced.
    Default,
    /// Any missing part is an error (exit 125).
    Require,
    /// Not applied: announced on stderr.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRule {
    #[serde(serialize_with = "crate::plan::lossy")]
    pub path: PathBuf,
    #[serde(
        serialize_with = "rights_names",
        deserialize_with = "rights_from_names"
    )]
    pub access: u64,
    /// The mount op or default the rule comes from.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockPlan {
    pub mode: Mode,
    /// The kernel's ABI when the plan was made (None: no Landlock).
    pub kernel_abi: Option<i64>,
    pub pinned_abi: i64,
    /// Filesystem rights handled (refused unless a rule grants them).
    #[serde(
        serialize_with = "rights_names",
        deserialize_with = "rights_from_names"
    )]
    pub handled_fs: u64,
    pub fs_rules: Vec<FsRule>,
    /// TCP ports the command may bind / connect to; None: not restricted.
    pub tcp_bind: Option<Vec<u16>>,
    pub tcp_connect: Option<Vec<u16>>,
    /// Signals and abstract unix sockets confined to the sandbox.
    pub scopes: bool,
    /// Parts of the policy the kernel cannot enforce (each announced).
    pub missing: Vec<String>,
}

impl LandlockPlan {
    pub fn off(kernel_abi: Option<i64>) -> LandlockPlan {
        LandlockPlan {
            mode: Mode::Off,
            kernel_abi,
            pinned_abi: PINNED_ABI,
            handled_fs: 0,
            fs_rules: Vec::new(),
            tcp_bind: None,
            tcp_connect: None,
            scopes: false,
            missing: Vec::new(),
        }
    }

    /// The policy for `rules` (full rights, before the kernel's limits), reduced to
    /// what `kernel_abi` enforces; what is lost is listed in `missing`.
    pub fn new(
        mode: Mode,
        kernel_abi: Option<i64>,
        rules: Vec<FsRule>,
        tcp_bind: Option<Vec<u16>>,
        tcp_connect: Option<Vec<u16>>,
    ) -> LandlockPlan {
        if mode == Mode::Off {
            return LandlockPlan::off(kernel_abi);
        }
        let abi = kernel_abi.unwrap_or(0).min(PINNED_ABI);
        let mut missing = Vec::new();
        let handled_fs = if abi >= 1 { fs_rights(abi) } else { 0 };
        if abi < 1 {
            missing.push(match kernel_abi {
                None => "Landlock (this kernel has none, or it is disabled): no filesystem rules, no scopes".to_string(),
                Some(v) => format!("Landlock (ABI {v})"),
            });
        } else {
            let lost = fs_rights(PINNED_ABI) & !handled_fs;
            if lost != 0 {
                missing.push(format!(
                    "Landlock ABI {abi} cannot restrict {}",
                    names(lost).join(", ")
                ));
            }
        }
        let net_limited = tcp_bind.is_some() || tcp_connect.is_some();
        if net_limited && (1..NET_ABI).contains(&abi) {
            missing.push(format!(
                "Landlock ABI {abi} has no TCP port rules (ABI {NET_ABI}): tcp_bind/tcp_connect not enforced"
            ));
        }
        let scopes = abi >= SCOPES_ABI;
        if !scopes && abi >= 1 {
            missing.push(format!(
                "Landlock ABI {abi} has no scopes (ABI {SCOPES_ABI}): the command can signal its caller's process group and reach host abstract sockets"
            ));
        }
        let fs_rules = rules
            .into_iter()
            .map(|mut r| {
                r.access &= handled_fs;
                r
            })
            .filter(|r| r.access != 0 && handled_fs != 0)
            .collect();
        let keep_net = abi >= NET_ABI;
        LandlockPlan {
            mode,
            kernel_abi,
            pinned_abi: PINNED_ABI,
            handled_fs,
            fs_rules,
            tcp_bind: if keep_net { tcp_bind } else { None },
            tcp_connect: if keep_net { tcp_connect } else { None },
            scopes,
            missing,
        }
    }

    /// One line for `-v`: what is enforced.
    pub fn summary(&self) -> String {
        if self.mode == Mode::Off {
            return "landlock: off".into();
        }
        if self.handled_fs == 0 && !self.scopes {
            return "landlock: not enforced (unavailable)".into();
        }
        let ports = |name: &str, v: &Option<Vec<u16>>| match v {
            None => String::new(),
            Some(p) => format!(
                ", {name} only to ports [{}]",
                p.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        format!(
            "landlock: kernel ABI {}, applied as ABI {}: {} filesystem rules{}{}{}",
            self.kernel_abi.unwrap_or(0),
            self.kernel_abi.unwrap_or(0).min(PINNED_ABI),
            self.fs_rules.len(),
            ports("tcp bind", &self.tcp_bind),
            ports("tcp connect", &self.tcp_connect),
            if self.scopes {
                ", signals and abstract unix sockets scoped"
            } else {
                ""
            }
        )
    }

    pub fn is_applied(&self) -> bool {
        self.mode != Mode::Off
            && (self.handled_fs != 0
                || self.scopes
                || self.tcp_bind.is_some()
                || self.tcp_connect.is_some())
    }
}

/// The kernel's Landlock ABI version, or None without Landlock.
pub fn abi() -> Option<i64> {
    crate::sys::landlock_abi(SYS_LANDLOCK_CREATE_RULESET, LANDLOCK_CREATE_RULESET_VERSION)
}

/// Rules converted for the command's process before any fork: paths as C strings.
pub struct Rules {
    pub applied: bool,
    handled_fs: u64,
    handled_net: u64,
    scoped: u64,
    fs: Vec<(PathBuf, u64)>,
    net: Vec<(u16, u64)>,
}

impl Rules {
    pub fn new(plan: &LandlockPlan) -> Rules {
        let mut handled_net = 0;
        let mut net = Vec::new();
        if let Some(p) = &plan.tcp_bind {
            handled_net |= BIND_TCP;
            net.extend(p.iter().map(|p| (*p, BIND_TCP)));
        }
        if let Some(p) = &plan.tcp_connect {
            handled_net |= CONNECT_TCP;
            net.extend(p.iter().map(|p| (*p, CONNECT_TCP)));
        }
        Rules {
            applied: plan.is_applied(),
            handled_fs: plan.handled_fs,
            handled_net,
            scoped: if plan.scopes {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
            fs: plan
                .fs_rules
                .iter()
                .map(|r| (r.path.clone(), r.access))
                .collect(),
            net,
        }
    }
}

/// Restrict this thread (and what it execs), through the `landlock` crate (the
/// kernel's maintainers' own). Runs in the command's process after pivot_root (the
/// rule paths are the sandbox's) and after no_new_privs. Every right is a hard
/// requirement: the plan asked only for what this kernel's ABI has. The one
/// adjustment is per rule: a rule naming a file gets the file rights of its set
/// (landlock_add_rule(2) refuses directory rights on a file).
pub fn apply(p: &Rules) -> Result<(), sys::SysError> {
    use landlock::{
        AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
        Ruleset, RulesetAttr as _, RulesetCreatedAttr as _, Scope,
    };
    if !p.applied {
        return Ok(());
    }
    let fail = |call: String, e: &dyn std::error::Error| {
        // The errno of the system call under the crate's error, where there is one.
        let mut source = e.source();
        let mut errno = libc::EINVAL;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                errno = io.raw_os_error().unwrap_or(errno);
            }
            source = s.source();
        }
        sys::SysError {
            call: format!("{call}: {e}"),
            errno,
        }
    };
    let fs = BitFlags::<AccessFs>::from_bits_truncate(p.handled_fs);
    let net = BitFlags::<AccessNet>::from_bits_truncate(p.handled_net);
    let scopes = BitFlags::<Scope>::from_bits_truncate(p.scoped);
    let head = || {
        format!(
            "landlock_create_ruleset(fs={:#x}, net={:#x}, scoped={:#x})",
            p.handled_fs, p.handled_net, p.scoped
        )
    };
    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    if !fs.is_empty() {
        ruleset = ruleset.handle_access(fs).map_err(|e| fail(head(), &e))?;
    }
    if !net.is_empty() {
        ruleset = ruleset.handle_access(net).map_err(|e| fail(head(), &e))?;
    }
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(|e| fail(head(), &e))?;
    }
    let mut created = ruleset.create().map_err(|e| fail(head(), &e))?;
    for (path, access) in &p.fs {
        let shown = || {
            format!(
                "landlock_add_rule({path:?}, [{}])",
                names(*access).join(",")
            )
        };
        // O_PATH: a rule needs no right to read the object, only to name it.
        let fd = PathFd::new(path)
            .map_err(|e| fail(format!("open({path:?}, O_PATH) for a Landlock rule"), &e))?;
        // A file takes only the file rights of the set (the kernel refuses directory
        // rights on one with EINVAL).
        let is_dir = {
            use std::os::fd::AsFd;
            sys::fstat(fd.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        };
        let access = if is_dir {
            *access
        } else {
            access & FILE_RIGHTS
        };
        let rule = PathBeneath::new(fd, BitFlags::<AccessFs>::from_bits_truncate(access));
        created = created.add_rule(rule).map_err(|e| fail(shown(), &e))?;
    }
    for (port, access) in &p.net {
        let rule = NetPort::new(*port, BitFlags::<AccessNet>::from_bits_truncate(*access));
        created = created
            .add_rule(rule)
            .map_err(|e| fail(format!("landlock_add_rule(tcp port {port})"), &e))?;
    }
    created
        .restrict_self()
        .map_err(|e| fail("landlock_restrict_self".into(), &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Every right sbx grants, by ABI, is the crate's for that ABI (the kernel's
    /// maintainers keep its table), and its bit is the crate's bit.
    #[test]
    fn the_rights_sbx_grants_are_the_landlock_crates() {
        use landlock::{AccessFs, AccessNet, BitFlags, Scope, ABI};
        for (n, abi) in [
            (1, ABI::V1),
            (2, ABI::V2),
            (3, ABI::V3),
            (4, ABI::V4),
            (5, ABI::V5),
            (6, ABI::V6),
        ] {
            use landlock::Access;
            assert_eq!(fs_rights(n), AccessFs::from_all(abi).bits(), "ABI {n}");
        }
        for (ours, theirs) in [
            (EXECUTE, AccessFs::Execute),
            (WRITE_FILE, AccessFs::WriteFile),
            (READ_FILE, AccessFs::ReadFile),
            (READ_DIR, AccessFs::ReadDir),
            (REMOVE_DIR, AccessFs::RemoveDir),
            (REMOVE_FILE, AccessFs::RemoveFile),
            (MAKE_CHAR, AccessFs::MakeChar),
            (MAKE_DIR, AccessFs::MakeDir),
            (MAKE_REG, AccessFs::MakeReg),
            (MAKE_SOCK, AccessFs::MakeSock),
            (MAKE_FIFO, AccessFs::MakeFifo),
            (MAKE_BLOCK, AccessFs::MakeBlock),
            (MAKE_SYM, AccessFs::MakeSym),
            (REFER, AccessFs::Refer),
            (TRUNCATE, AccessFs::Truncate),
            (IOCTL_DEV, AccessFs::IoctlDev),
        ] {
            assert_eq!(ours, BitFlags::from(theirs).bits(), "{theirs:?}");
        }
        // The file rights sbx keeps for a rule naming a file are the crate's.
        assert_eq!(FILE_RIGHTS, AccessFs::from_file(ABI::V6).bits());
        assert_eq!(BIND_TCP, BitFlags::from(AccessNet::BindTcp).bits());
        assert_eq!(CONNECT_TCP, BitFlags::from(AccessNet::ConnectTcp).bits());
        assert_eq!(
            SCOPE_ABSTRACT_UNIX_SOCKET,
            BitFlags::from(Scope::AbstractUnixSocket).bits()
        );
        assert_eq!(SCOPE_SIGNAL, BitFlags::from(Scope::Signal).bits());
        assert_eq!(PINNED_ABI, ABI::V6 as i64);
    }

    use super::*;

    fn rule(p: &str, a: u64) -> FsRule {
        FsRule {
            path: p.into(),
            access: a,
            origin: "test".into(),
        }
    }

    #[test]
    fn abi_6_keeps_every_right_and_the_scopes() {
        let p = LandlockPlan::new(
            Mode::Default,
            Some(7),
            vec![rule("/usr", READ), rule("/dev", DEVICE)],
            None,
            Some(vec![443]),
        );
        assert_eq!(p.handled_fs, fs_rights(6));
        assert!(p.scopes && p.missing.is_empty());
        assert_eq!(p.fs_rules[1].access, DEVICE);
        assert_eq!(p.tcp_connect, Some(vec![443]));
    }

    #[test]
    fn older_abis_lose_rights_and_say_so() {
        let p = LandlockPlan::new(
            Mode::Default,
            Some(3),
            vec![rule("/dev", DEVICE)],
            Some(vec![80]),
            None,
        );
        assert_eq!(p.fs_rules[0].access, DEVICE & !IOCTL_DEV);
        assert!(!p.scopes && p.tcp_bind.is_none());
        assert_eq!(p.missing.len(), 3, "{:?}", p.missing);
        let none = LandlockPlan::new(Mode::Default, None, vec![rule("/", READ_DIR)], None, None);
        assert!(!none.is_applied() && none.fs_rules.is_empty());
        assert_eq!(none.missing.len(), 1);
    }

    #[test]
    fn off_applies_nothing() {
        let p = LandlockPlan::new(Mode::Off, Some(7), vec![rule("/", READ)], None, None);
        assert!(!p.is_applied() && p.missing.is_empty() && p.fs_rules.is_empty());
    }

    #[test]
    fn the_right_sets_nest() {
        assert_eq!(READ & !WRITE, 0);
        assert_eq!(WRITE & !DEVICE, 0);
        assert_eq!(DEVICE & (MAKE_CHAR | MAKE_BLOCK), 0);
        assert_eq!(fs_rights(6) & DEVICE, DEVICE);
        assert_eq!(names(READ), ["execute", "read-file", "read-dir"]);
    }
}

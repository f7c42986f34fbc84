//! The profile file format, version 1: what a `.toml` profile may say. Every table
//! rejects unknown keys and every enumeration is an enum, so a typo is an error, never
//! a silently ignored line. `man/sbx-profile.5` documents each key; a test checks that
//! every key here appears there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub version: Spanned<u32>,
    pub description: Option<String>,
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    pub hostname: Option<Spanned<String>>,
    pub cwd: Option<Spanned<String>>,
    pub net: Option<NetMode>,
    pub ids: Option<Spanned<IdMode>>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub seccomp: Option<Spanned<SeccompMode>>,
    /// Syscalls taken off the default deny-list, by name (e.g. "ptrace" for a
    /// debugger; "unshare", "clone" and "chroot" for a browser's own sandbox).
    #[serde(default)]
    pub seccomp_allow: Vec<Spanned<String>>,
    /// Syscalls refused in addition, by name.
    #[serde(default)]
    pub seccomp_deny: Vec<Spanned<String>>,
    pub landlock: Option<Spanned<LandlockMode>>,
    /// What a sandbox may do to the version-control metadata in its writable
    /// directories: `read-only` (the default), `commit`, `writable`.
    pub vcs: Option<Spanned<VcsMode>>,
    /// TCP ports the command may bind (Landlock ABI 4); unset: not restricted.
    pub tcp_bind: Option<Vec<Spanned<u16>>>,
    /// TCP ports the command may connect to (Landlock ABI 4); unset: not restricted.
    pub tcp_connect: Option<Vec<Spanned<u16>>>,
    #[serde(default)]
    pub mount: Vec<Spanned<MountEntry>>,
    #[serde(default)]
    pub mask: Vec<Spanned<String>>,
    pub env: Option<EnvTable>,
    /// The session bus, through xdg-dbus-proxy with this filter.
    pub dbus: Option<DbusTable>,
    /// `[limits]` (also spelled `[rlimits]`, its name before cgroup limits joined it).
    #[serde(alias = "rlimits")]
    pub limits: Option<Spanned<Limits>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetMode {
    None,
    Host,
    User,
    #[serde(rename = "user:host-loopback")]
    UserHostLoopback,
}

/// How ids are mapped: `auto` uses the subordinate ranges when the user has them and
/// the helpers exist, else a single id; `single` always maps one id; `subordinate`
/// requires the ranges (an error without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdMode {
    Auto,
    Single,
    Subordinate,
}

/// The seccomp policy: the built-in default deny-list, the stricter one (rare and
/// legacy syscalls, socket families beyond unix/inet/netlink), or none at all
/// (announced on stderr every time). Seccomp is never best-effort: a filter that
/// cannot be installed is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompMode {
    Default,
    Strict,
    Off,
}

/// Landlock: rules derived from the mounts plus the scopes, as far as the kernel
/// goes (`default`, what is missing is announced), all of it or exit 125
/// (`require`), or nothing (`off`, announced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandlockMode {
    Default,
    Require,
    Off,
}

/// Version-control metadata (`.git`, `.hg`) inside writable directories, which the
/// host's tools execute (hooks, config): all of it read-only; a repository's own
/// `.git` staged so that `git commit` works while what git would run stays
/// read-only (see plan/vcs.rs); or writable as any other file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum VcsMode {
    /// Read-only: nothing of .git or .hg can be written (the default)
    ReadOnly,
    /// A repository's own .git is staged: objects, refs and logs written in place, index and HEAD copied back after checks, what git executes read-only, anything new discarded
    Commit,
    /// Writable like any other file: a sandbox can plant hooks and config the host's git will run
    Writable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// The host path as it is: a symlink is recreated, a directory bound read-only,
    /// a missing path skipped (the merged-/usr links).
    Mirror,
    RoBind,
    Bind,
    DevBind,
    Tmpfs,
    Dir,
    File,
    Symlink,
    Proc,
    Dev,
    Mqueue,
    /// An overlay of `src` whose writes go to a tmpfs and vanish with the sandbox.
    TmpOverlay,
    /// The entries of the Xauthority file `src` for the display `${X11_DISPLAY}` only,
    /// written at `dst` for any hostname (the sandbox's differs from the host's).
    Xauthority,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountEntry {
    #[serde(rename = "type")]
    pub kind: MountKind,
    pub src: Option<String>,
    pub dst: Option<String>,
    /// A missing source (or unset variable) skips this entry instead of failing.
    #[serde(default)]
    pub optional: bool,
    pub size: Option<Size>,
    /// Octal, as a string: "0755".
    pub mode: Option<String>,
    pub content: Option<String>,
    pub target: Option<String>,
    /// Skip a bind whose source is $HOME or a directory above it (and say so), so a
    /// profile binding the current directory never grants the whole home by accident.
    #[serde(default)]
    pub skip_if_home_or_above: bool,
    /// For `proc`: cover the entries that describe the host (default true).
    pub hide_host_entries: Option<bool>,
    /// For `bind`: make the source directory (mode 0700, inside $HOME only) when it
    /// is missing, so a browser's profile persists without the user making it.
    #[serde(default)]
    pub create: bool,
}

/// A size: bytes as an integer, or a string with a K, M or G suffix ("64M").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

/// What the sandbox may do on the session bus (xdg-dbus-proxy's policy): bus names
/// it may own, and names it may talk to (wildcards as `org.freedesktop.portal.*`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbusTable {
    #[serde(default)]
    pub own: Vec<String>,
    #[serde(default)]
    pub talk: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvTable {
    /// Variables of sbx's environment to pass through, beyond the built-in allow-list.
    #[serde(default)]
    pub keep: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// Resource limits: the rlimits, applied as both soft and hard limit to the command
/// (`nproc` counts the sandbox's own processes: its user namespace's), and the
/// cgroup v2 ceilings `memory`, `cpus`, `pids` over the whole sandbox.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub fsize: Option<Size>,
    #[serde(rename = "as")]
    pub address_space: Option<Size>,
    pub core: Option<Size>,
    /// CPU seconds.
    pub cpu: Option<u64>,
    pub stack: Option<Size>,
    pub memlock: Option<Size>,
    /// cgroup memory.max for the whole sandbox.
    pub memory: Option<Size>,
    /// CPUs' worth of time (fractional): cgroup cpu.max.
    pub cpus: Option<f64>,
    /// cgroup pids.max for the whole sandbox.
    pub pids: Option<u64>,
    /// What the cgroup ceilings do where no cgroup v2 subtree is delegated.
    pub cgroup: Option<CgroupMode>,
}

/// `required` (default): no delegation is an error (exit 125); `best-effort`: the
/// sandbox runs without the cgroup ceilings, and sbx says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupMode {
    Required,
    BestEffort,
}

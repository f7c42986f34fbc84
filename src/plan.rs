//! The `Plan`: everything the launcher will do, decided up front as plain data
//! (DESIGN.md §1.1). Built from the command line and the host facts by a pure
//! function; every validation error happens here, before any namespace exists.
//! `--dry-run` prints it as JSON.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::cli::{Cli, EnvArg, MountArg, NetArg};
use crate::error::{Error, Result};
use crate::host::{Entry, Host, HostFs};
use crate::seccomp::SeccompPlan;
use crate::userns::{plan_ids, IdPlan};
use crate::{caps, host};

const MIB: u64 = 1024 * 1024;
/// Size of the root tmpfs: it only holds mount-point directories and symlinks.
pub const ROOT_SIZE: u64 = MIB;
/// Default size of `/tmp`, `$HOME` and `--tmpfs` mounts.
pub const TMPFS_SIZE: u64 = 1024 * MIB;
pub const RUN_SIZE: u64 = 64 * MIB;
pub const SHM_SIZE: u64 = 256 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Ipc,
    Uts,
    Net,
    Cgroup,
}

impl Namespace {
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Recursively read-only, nosuid, nodev.
    ReadOnly,
    /// Writable, nosuid, nodev.
    ReadWrite,
    /// Writable, nosuid, device nodes usable.
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum MountOp {
    Bind {
        #[serde(serialize_with = "lossy")]
        src: PathBuf,
        #[serde(serialize_with = "lossy")]
        dst: PathBuf,
        access: Access,
    },
    Tmpfs {
        #[serde(serialize_with = "lossy")]
        dst: PathBuf,
        size: u64,
        mode: u32,
    },
    Dir {
        #[serde(serialize_with = "lossy")]
        dst: PathBuf,
        mode: u32,
    },
    Symlink {
        #[serde(serialize_with = "lossy")]
        target: PathBuf,
        #[serde(serialize_with = "lossy")]
        link: PathBuf,
    },
    Proc {
        #[serde(serialize_with = "lossy")]
        dst: PathBuf,
    },
    Dev {
        #[serde(serialize_with = "lossy")]
        dst: PathBuf,
        shm_size: u64,
    },
}

impl MountOp {
    pub fn dst(&self) -> &Path {
        match self {
            MountOp::Bind { dst, .. }
            | MountOp::Tmpfs { dst, .. }
            | MountOp::Dir { dst, .. }
            | MountOp::Proc { dst }
            | MountOp::Dev { dst, .. } => dst,
            MountOp::Symlink { link, .. } => link,
        }
    }
}

/// A mount op and where it came from (the option or profile entry), for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(flatten)]
    pub op: MountOp,
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    #[serde(serialize_with = "lossy_vec")]
    pub command: Vec<OsString>,
    pub ids: IdPlan,
    /// In creation order; `user` is always first and created alone.
    pub namespaces: Vec<Namespace>,
    pub net: NetArg,
    pub root_size: u64,
    pub mounts: Vec<Mount>,
    #[serde(serialize_with = "lossy")]
    pub hostname: OsString,
    /// Tried in order after pivot_root; with `--cwd`, only that one, and it must exist.
    #[serde(serialize_with = "lossy_vec")]
    pub cwd: Vec<PathBuf>,
    pub cwd_required: bool,
    #[serde(serialize_with = "lossy_env")]
    pub env: Vec<(OsString, OsString)>,
    /// Capabilities the command keeps (`--cap-add`), by number.
    pub caps: Vec<u32>,
    pub seccomp: SeccompPlan,
    /// Lines announced on stderr before the launch (unless `-q`).
    pub notices: Vec<String>,
}

/// Split `SRC[:DST]` on the first unescaped colon; `\:` is a colon, `\\` a backslash.
pub fn split_pair(arg: &OsStr) -> (OsString, Option<OsString>) {
    let mut parts = vec![Vec::new()];
    let mut bytes = arg.as_bytes().iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' if matches!(bytes.peek(), Some(b':') | Some(b'\\')) => {
                parts.last_mut().unwrap().push(*bytes.next().unwrap());
            }
            b':' if parts.len() == 1 => parts.push(Vec::new()),
            _ => parts.last_mut().unwrap().push(b),
        }
    }
    let mut it = parts.into_iter().map(OsString::from_vec);
    (it.next().unwrap(), it.next())
}

/// A destination inside the sandbox: absolute, without `.`/`..`, and normalised.
pub fn sandbox_path(p: &OsStr, what: &str) -> Result<PathBuf> {
    if p.as_bytes().contains(&0) {
        return Err(Error::new(what, "path contains a NUL byte"));
    }
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(Error::new(
            what,
            format!("{:?} is not an absolute path", path),
        ));
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::new(what, format!("{:?} contains `..`", path)));
            }
        }
    }
    Ok(out)
}

fn lexical_abs(p: &OsStr, cwd: Option<&Path>) -> PathBuf {
    let path = Path::new(p);
    let joined = match cwd {
        Some(c) if path.is_relative() => c.join(path),
        _ => path.to_path_buf(),
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The environment allow-list: what a command needs to behave, nothing that tends
/// to carry secrets or socket addresses (tokens, SSH_AUTH_SOCK, DBUS_SESSION_BUS_ADDRESS).
fn allowed_env(name: &OsStr) -> bool {
    let n = name.as_bytes();
    matches!(
        n,
        b"PATH" | b"HOME" | b"USER" | b"LOGNAME" | b"TERM" | b"LANG" | b"TZ"
    ) || n.starts_with(b"LC_")
}

pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

impl Plan {
    pub fn build(cli: &Cli, host: &Host, fs: &dyn HostFs) -> Result<Plan> {
        let mut notices = Vec::new();
        if cli.command.is_empty() {
            return Err(Error::new("COMMAND", "no command given"));
        }

        // --- ids ---
        let helpers = (fs.is_executable_file(Path::new(host::NEWUIDMAP))
            && fs.is_executable_file(Path::new(host::NEWGIDMAP)))
        .then(|| {
            (
                PathBuf::from(host::NEWUIDMAP),
                PathBuf::from(host::NEWGIDMAP),
            )
        });
        let (ids, notice) = plan_ids(
            host.uid,
            host.gid,
            cli.uid.unwrap_or(host.uid),
            cli.gid.unwrap_or(host.gid),
            &host.subuid,
            &host.subgid,
            helpers,
        )?;
        notices.extend(notice);

        // --- namespaces: user first, alone; then the rest in one unshare ---
        let mut namespaces = vec![
            Namespace::User,
            Namespace::Mount,
            Namespace::Pid,
            Namespace::Ipc,
            Namespace::Uts,
        ];
        if cli.net == NetArg::None {
            namespaces.push(Namespace::Net);
        }
        namespaces.push(Namespace::Cgroup);

        // --- mounts: the default layout, then the command line's, in order ---
        let mut mounts = default_layout(host, fs);
        for (kind, value) in &cli.mount_order {
            mounts.push(cli_mount(*kind, value, host, fs)?);
        }

        // --- process details ---
        let hostname = cli.hostname.clone().unwrap_or_else(|| "sbx".into());
        if hostname.is_empty() || hostname.len() > 64 || hostname.as_bytes().contains(&0) {
            return Err(Error::new(
                "--hostname",
                "must be 1 to 64 bytes without NUL",
            ));
        }
        let (cwd, cwd_required) = match &cli.cwd {
            Some(c) => (vec![sandbox_path(c, "--cwd")?], true),
            None => {
                let mut v: Vec<PathBuf> = host.cwd.iter().cloned().collect();
                v.push(host.home.clone());
                v.push("/".into());
                (v, false)
            }
        };

        let env = build_env(cli, host)?;

        let mut caps_keep = Vec::new();
        for name in &cli.cap_add {
            let cap = caps::parse(name)
                .ok_or_else(|| Error::new("--cap-add", format!("unknown capability {name:?}")))?;
            if !caps_keep.contains(&cap) {
                caps_keep.push(cap);
                notices.push(format!(
                    "keeping {} for the command: it acts only inside the sandbox's user namespace",
                    caps::name(cap)
                ));
            }
        }

        Ok(Plan {
            command: cli.command.clone(),
            ids,
            namespaces,
            net: cli.net,
            root_size: ROOT_SIZE,
            mounts,
            hostname,
            cwd,
            cwd_required,
            env,
            caps: caps_keep,
            seccomp: SeccompPlan::default(),
            notices,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serialises")
    }
}

/// The layout used when no profile is given (issue 2 §5): system directories
/// read-only, private /proc, /dev, /tmp, /run, an empty writable $HOME, nothing else.
pub fn default_layout(host: &Host, fs: &dyn HostFs) -> Vec<Mount> {
    let origin = || "default layout".to_string();
    let m = |op| Mount {
        op,
        origin: origin(),
    };
    let ro = |p: &str| {
        m(MountOp::Bind {
            src: p.into(),
            dst: p.into(),
            access: Access::ReadOnly,
        })
    };
    let mut v = vec![ro("/usr")];
    // Merged-/usr systems have /bin -> usr/bin etc.: recreate the links; older layouts
    // have real directories, which are bound read-only instead.
    for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        match fs.entry(Path::new(d)) {
            Entry::Symlink(target) => v.push(m(MountOp::Symlink {
                target,
                link: d.into(),
            })),
            Entry::Dir => v.push(ro(d)),
            _ => {}
        }
    }
    v.push(ro("/etc"));
    if fs.entry(Path::new("/opt")) == Entry::Dir {
        v.push(ro("/opt"));
    }
    v.push(m(MountOp::Proc {
        dst: "/proc".into(),
    }));
    v.push(m(MountOp::Dev {
        dst: "/dev".into(),
        shm_size: SHM_SIZE,
    }));
    v.push(m(MountOp::Tmpfs {
        dst: "/tmp".into(),
        size: TMPFS_SIZE,
        mode: 0o1777,
    }));
    v.push(m(MountOp::Tmpfs {
        dst: "/run".into(),
        size: RUN_SIZE,
        mode: 0o755,
    }));
    if host.home != Path::new("/") {
        v.push(m(MountOp::Tmpfs {
            dst: host.home.clone(),
            size: TMPFS_SIZE,
            mode: 0o700,
        }));
    }
    v
}

fn cli_mount(kind: MountArg, value: &OsStr, host: &Host, fs: &dyn HostFs) -> Result<Mount> {
    let origin = format!("{} {}", kind.flag(), value.to_string_lossy());
    let what = origin.as_str();
    let op = match kind {
        MountArg::RoBind | MountArg::Bind | MountArg::DevBind => {
            let (src, dst) = split_pair(value);
            if src.is_empty() {
                return Err(Error::new(what, "empty source"));
            }
            if src.as_bytes().contains(&0) {
                return Err(Error::new(what, "source contains a NUL byte"));
            }
            // The source is resolved here, as the user, so the plan names the real
            // path; the launcher opens it again with the user's rights only.
            let real = fs
                .canonicalize(Path::new(&src))
                .map_err(|e| match e.raw_os_error() {
                    Some(errno) => Error::sys(
                        what,
                        format!("source: realpath({:?})", Path::new(&src)),
                        errno,
                    ),
                    None => Error::new(what, format!("source {:?}: {e}", Path::new(&src))),
                })?;
            let dst = match dst {
                Some(d) => sandbox_path(&d, what)?,
                None => lexical_abs(&src, host.cwd.as_deref()),
            };
            let access = match kind {
                MountArg::RoBind => Access::ReadOnly,
                MountArg::Bind => Access::ReadWrite,
                _ => Access::Device,
            };
            MountOp::Bind {
                src: real,
                dst,
                access,
            }
        }
        MountArg::Tmpfs => MountOp::Tmpfs {
            dst: sandbox_path(value, what)?,
            size: TMPFS_SIZE,
            mode: 0o755,
        },
        MountArg::Dir => MountOp::Dir {
            dst: sandbox_path(value, what)?,
            mode: 0o755,
        },
        MountArg::Symlink => {
            let (target, link) = split_pair(value);
            let link = link.ok_or_else(|| Error::new(what, "expected TARGET:LINK"))?;
            if target.is_empty() || target.as_bytes().contains(&0) {
                return Err(Error::new(what, "empty target or NUL byte in target"));
            }
            MountOp::Symlink {
                target: target.into(),
                link: sandbox_path(&link, what)?,
            }
        }
    };
    if op.dst() == Path::new("/") {
        return Err(Error::new(what, "cannot replace the sandbox root itself"));
    }
    Ok(Mount { op, origin })
}

fn build_env(cli: &Cli, host: &Host) -> Result<Vec<(OsString, OsString)>> {
    let mut env: Vec<(OsString, OsString)> = host
        .env
        .iter()
        .filter(|(k, _)| allowed_env(k) || cli.keep_env.iter().any(|x| x == k))
        .cloned()
        .collect();
    let set = |env: &mut Vec<(OsString, OsString)>, k: &OsStr, v: OsString| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_os_string(), v));
    };
    // HOME and USER describe the sandbox's own user: always present.
    if !env.iter().any(|(k, _)| k == "HOME") {
        set(&mut env, OsStr::new("HOME"), host.home.clone().into());
    }
    if !env.iter().any(|(k, _)| k == "USER") {
        set(&mut env, OsStr::new("USER"), host.user.clone().into());
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        set(&mut env, OsStr::new("PATH"), DEFAULT_PATH.into());
    }
    for e in &cli.env_order {
        match e {
            EnvArg::Set(kv) => {
                let b = kv.as_bytes();
                let eq = b
                    .iter()
                    .position(|c| *c == b'=')
                    .filter(|i| *i > 0)
                    .ok_or_else(|| {
                        Error::new(
                            "--setenv",
                            format!("{:?} is not KEY=VALUE", kv.to_string_lossy()),
                        )
                    })?;
                set(
                    &mut env,
                    OsStr::from_bytes(&b[..eq]),
                    OsStr::from_bytes(&b[eq + 1..]).to_os_string(),
                );
            }
            EnvArg::Unset(k) => {
                if k.is_empty() || k.as_bytes().contains(&b'=') {
                    return Err(Error::new(
                        "--unsetenv",
                        format!("{:?} is not a variable name", k),
                    ));
                }
                env.retain(|(n, _)| n != k);
            }
        }
    }
    Ok(env)
}

fn lossy<S: Serializer, T: AsRef<OsStr>>(v: &T, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.as_ref().to_string_lossy())
}

fn lossy_vec<S: Serializer, T: AsRef<OsStr>>(
    v: &[T],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.as_ref().to_string_lossy()))
}

fn lossy_env<S: Serializer>(
    v: &[(OsString, OsString)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(
        v.iter()
            .map(|(k, x)| (k.to_string_lossy(), x.to_string_lossy())),
    )
}

#[cfg(test)]
mod tests;

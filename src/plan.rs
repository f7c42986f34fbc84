//! The `Plan`: everything the launcher will do, decided up front as plain data
//! (README, "How a launch works"). Built from the command line and the host facts by a pure
//! function; every validation error happens here, before any namespace exists.
//! `--dry-run` prints it as JSON.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::caps;
use crate::cli::{Cli, EnvArg, MountArg, NetArg};
use crate::error::{Error, Result};
use crate::host::{Host, HostFs};
use crate::landlock::LandlockPlan;
use crate::profile::schema::{NetMode, VcsMode};
use crate::profile::vars::{expand, Vars};
use crate::profile::{self, EnvOp, Locations, Resolved};
use crate::seccomp::SeccompPlan;
use crate::userns::IdPlan;

mod compile;
pub mod confine;
pub mod dbus;
pub mod ids;
pub mod limits;
pub mod mount_op;
pub mod network;
pub mod tree;
pub mod trust;
pub mod vcs;

pub use compile::{compile as compile_profile, Compiled};

const MIB: u64 = 1024 * 1024;
/// Size of the root tmpfs: it only holds mount-point directories and symlinks.
pub const ROOT_SIZE: u64 = MIB;
/// Default size of `/tmp`, `$HOME` and `--tmpfs` mounts.
pub const TMPFS_SIZE: u64 = 1024 * MIB;
pub const RUN_SIZE: u64 = 64 * MIB;
pub const SHM_SIZE: u64 = 256 * MIB;

pub use crate::namespace::Namespace;

pub use mount_op::{Access, Mount, MountOp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The profile and every file it was assembled from, in merge order.
    pub profile: String,
    pub profile_files: Vec<String>,
    #[serde(serialize_with = "lossy_vec")]
    pub command: Vec<OsString>,
    pub ids: IdPlan,
    /// In the namespace table's order (crate::namespace); `user` first, made in the
    /// same clone as `pid` and owning every other.
    pub namespaces: Vec<Namespace>,
    pub net: network::NetPlan,
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
    /// Resource limits for the command: (name, value), soft and hard alike.
    pub rlimits: Vec<(String, u64)>,
    /// The cgroup v2 leaf holding the whole sandbox, with its ceilings (`--memory`,
    /// `--cpus`, `--pids`); None: no cgroup limits.
    pub cgroup: Option<crate::cgroup::CgroupPlan>,
    /// `--name`; None: PROFILE-PID, chosen by the launcher.
    pub name: Option<String>,
    /// Where the running sandbox is recorded (`sbx --list`); None: nowhere safe,
    /// the sandbox runs unrecorded (and sbx says why).
    #[serde(serialize_with = "lossy_opt")]
    pub records: Option<PathBuf>,
    /// The session bus through xdg-dbus-proxy (`[dbus]` in the profile).
    pub dbus: Option<dbus::DbusPlan>,
    /// `--info-fd`, `--status-fd`.
    pub info_fd: Option<i32>,
    pub status_fd: Option<i32>,
    /// `--timeout`: the whole sandbox is killed after this many milliseconds.
    pub timeout_ms: Option<u64>,
    pub seccomp: SeccompPlan,
    pub landlock: LandlockPlan,
    /// What the hardening layers enforce, one line each (`-v` prints them).
    pub enforcement: Vec<String>,
    /// Optional profile entries skipped on this host (`-v` prints them).
    pub skipped: Vec<String>,
    /// Lines announced on stderr before the launch (unless `-q`).
    pub notices: Vec<String>,
    /// Weakened isolation the profile asked for: announced even with `-q`.
    pub warnings: Vec<String>,
    /// Bind sources the launcher makes first (`create = true`; directories, mode
    /// 0700, inside $HOME, following no symlink).
    #[serde(serialize_with = "lossy_vec")]
    pub create: Vec<PathBuf>,
    /// Said after "command not found inside the sandbox": where the command is on
    /// the host, and how to grant it, when no mount grants that place.
    pub not_found_hint: Option<String>,
    /// `--vcs` (or the profile's `vcs`): what the sandbox may do to `.git` and `.hg`.
    pub vcs: VcsMode,
    /// Git directories staged for `--vcs commit`, which the launcher prepares and
    /// copies back (see plan/vcs.rs).
    pub git_staged: Vec<vcs::Staged>,
    /// `-q`: notices found during the launch are not printed either.
    #[serde(skip)]
    pub quiet: bool,
    /// sbx itself runs with no_new_privs (inside a sandbox, most likely).
    #[serde(skip)]
    pub no_new_privs: bool,
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
    if p.len() >= libc::PATH_MAX as usize {
        return Err(Error::new(
            what,
            format!("path is {} bytes: longer than PATH_MAX", p.len()),
        ));
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) if n.len() > 255 => {
                return Err(Error::new(
                    what,
                    format!("a name in {:?} is longer than 255 bytes (NAME_MAX)", path),
                ));
            }
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::new(what, format!("{:?} contains `..`", path)));
            }
        }
    }
    Ok(out)
}

pub(crate) fn lexical_abs(p: &OsStr, cwd: Option<&Path>) -> PathBuf {
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

/// A profile's `env.keep` entry: a name, or a prefix ending in `*` (`GITHUB_*`). A
/// prefix never passes a name that says it holds a secret (`CI_JOB_TOKEN`,
/// `GITHUB_TOKEN`, `*_PASSWORD`, `*_SECRET`, `*_KEY`): those are passed only by name.
fn keep_matches(keep: &str, name: &OsStr) -> bool {
    let n = name.as_bytes();
    match keep.strip_suffix('*') {
        None => n == keep.as_bytes(),
        Some(prefix) => {
            n.starts_with(prefix.as_bytes())
                && ![
                    "TOKEN",
                    "SECRET",
                    "PASSWORD",
                    "PASSWD",
                    "_KEY",
                    "CREDENTIAL",
                    "AUTH",
                ]
                .iter()
                .any(|w| {
                    n.windows(w.len())
                        .any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
                })
        }
    }
}

pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

impl Plan {
    /// Build the plan for `cli` with the profile locations of this host.
    pub fn build(cli: &Cli, host: &Host, fs: &dyn HostFs) -> Result<Plan> {
        let vars = Vars::from_host(host);
        let locs = Locations::new(Path::new(&vars.0["XDG_CONFIG_HOME"]));
        Plan::build_with(cli, host, &crate::host::CachedFs::new(fs), &locs, &vars)
    }

    /// The plan, step by step: the profile resolved and compiled, the limits, the
    /// ids, the namespaces, the mounts (the profile's, the network's files, the
    /// session bus, the terminal, the command line's, the agent, the version-control
    /// protection), the tree played through and the trust rule, then what the
    /// command's process gets (cwd, environment, capabilities, seccomp, Landlock).
    pub fn build_with(
        cli: &Cli,
        host: &Host,
        fs: &dyn HostFs,
        locs: &Locations,
        vars: &Vars,
    ) -> Result<Plan> {
        let b = begin(cli, host, fs, locs, vars)?;
        let (mut notices, mut skipped) = (b.notices, b.compiled.skipped);
        let (refused, create, profile) = (b.compiled.warnings, b.compiled.create, b.profile);

        // The mounts: the profile's (masks last), the network's files, the session
        // bus, the terminal, then the command line's, in order.
        let m = gather_mounts(
            cli,
            host,
            fs,
            &profile,
            b.compiled.mounts,
            b.net,
            (&mut notices, &mut skipped),
        )?;
        let settled = settle(m.mounts, fs, &create, locs, &profile, host)?;
        let mounts = settled.mounts;
        let (hostname, net, records, dbus, vcs) = (m.hostname, m.net, m.records, m.dbus, m.vcs);
        let (git_staged, vcs_line) = (m.git_staged, m.vcs_line);

        // What the command's process gets.
        check_hostname(&hostname, cli, &profile)?;
        let (cwd, cwd_required) = working_dir(cli, &profile, vars, host, &settled.built)?;
        let mut env = build_env(cli, host, &profile)?;
        let bus_address = dbus.as_ref().map(|(_, address)| address.clone());
        env_grants(&mut env, m.agent, bus_address, !git_staged.is_empty());
        let (seccomp, landlock, warnings, enforcement) = confinement(
            cli,
            &profile,
            vars,
            &settled.visible,
            host,
            refused,
            vcs_line,
        )?;
        if b.limits.cgroup.is_some() {
            limits::cgroupfs_not_writable(&mounts, &fs.mountinfo())?;
        }
        let not_found_hint = not_found_hint(&cli.command[0], host, fs, &mounts, &profile.name);
        Ok(Plan {
            create,
            quiet: cli.quiet,
            no_new_privs: host.no_new_privs,
            not_found_hint,
            name: cli.name.clone(),
            records,
            dbus: dbus.map(|(p, _)| p),
            info_fd: cli.info_fd,
            status_fd: cli.status_fd,
            profile: profile.name.clone(),
            profile_files: profile.files.clone(),
            command: cli.command.clone(),
            ids: b.ids,
            namespaces: b.namespaces,
            net,
            root_size: ROOT_SIZE,
            mounts,
            hostname,
            cwd,
            cwd_required,
            env,
            caps: b.caps,
            rlimits: b.limits.rlimits,
            cgroup: b.limits.cgroup,
            timeout_ms: cli.timeout.map(|s| (s * 1000.0).ceil() as u64),
            seccomp,
            landlock,
            enforcement,
            skipped,
            vcs,
            git_staged,
            warnings,
            notices,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serialises")
    }
}

/// A desktop profile (one that includes the display abstractions) says in one line
/// when this host gives it no display or no sound: the browser would only run
/// headless, or silent. On a desktop, nothing is said.
fn desktop_notice(profile: &Resolved, mounts: &[Mount]) -> Option<String> {
    let from = |abstractions: &[&str]| {
        mounts.iter().any(|m| {
            abstractions
                .iter()
                .any(|a| m.origin.starts_with(&format!("builtin:{a}:")))
        })
    };
    let included = |a: &str| profile.files.iter().any(|f| f == &format!("builtin:{a}"));
    if !included("x11") && !included("wayland") {
        return None;
    }
    let missing: Vec<&str> = [
        (!from(&["x11", "wayland"]))
            .then_some("no display (DISPLAY and WAYLAND_DISPLAY name no local one)"),
        ((included("pulseaudio") || included("pipewire")) && !from(&["pulseaudio", "pipewire"]))
            .then_some("no sound (no PulseAudio or PipeWire socket)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{}: {} here; -v lists what was skipped",
            profile.name,
            missing.join(", ")
        )
    })
}

/// The network mode: the command line's, else the profile's, else none.
fn net_mode(cli: &Cli, profile: &Resolved) -> NetArg {
    cli.net
        .or(profile.net.map(|n| match n {
            NetMode::None => NetArg::None,
            NetMode::Host => NetArg::Host,
            NetMode::User => NetArg::User,
            NetMode::UserHostLoopback => NetArg::UserHostLoopback,
        }))
        .unwrap_or(NetArg::None)
}

/// The first steps of a plan: the profile chosen and compiled, the limits, the id
/// maps and the namespaces to make, with the notices they raised.
struct Begun {
    profile: Resolved,
    compiled: compile::Compiled,
    limits: limits::Resolution,
    ids: IdPlan,
    net: NetArg,
    namespaces: Vec<Namespace>,
    caps: Vec<u32>,
    notices: Vec<String>,
}

fn begin(cli: &Cli, host: &Host, fs: &dyn HostFs, locs: &Locations, vars: &Vars) -> Result<Begun> {
    if cli.command.is_empty() {
        return Err(Error::new("COMMAND", "no command given"));
    }
    check_reporting(cli)?;
    let spec = cli.profile.as_deref().unwrap_or("default");
    let profile = profile::resolve(spec, locs, host.cwd.as_deref())?;
    let mut compiled =
        compile::compile(&profile, host, fs, vars).map_err(|mut errs| errs.remove(0))?;
    let mut notices = std::mem::take(&mut compiled.notices);
    let limits = limits::resolve(cli, &profile, host, fs)?;
    notices.extend(limits.notices.iter().cloned());
    notices.extend(desktop_notice(&profile, &compiled.mounts));
    let ids = ids::plan(cli, &profile, host, fs, &mut notices)?;
    let net = net_mode(cli, &profile);
    // Every namespace sbx makes, but the network's with --net host.
    let namespaces = crate::namespace::made()
        .map(|r| r.kind)
        .filter(|ns| *ns != Namespace::Net || net != NetArg::Host)
        .collect();
    let caps = kept_caps(cli, &mut notices)?;
    Ok(Begun {
        caps,
        profile,
        compiled,
        limits,
        ids,
        net,
        namespaces,
        notices,
    })
}

/// The seccomp policy and the Landlock rules, what the plan warns of (the compiled
/// profile's refusals among them), and the `-v` lines of what is enforced.
fn confinement(
    cli: &Cli,
    profile: &Resolved,
    vars: &Vars,
    visible: &[Mount],
    host: &Host,
    refused: Vec<String>,
    vcs_line: Option<String>,
) -> Result<(SeccompPlan, LandlockPlan, Vec<String>, Vec<String>)> {
    let seccomp = confine::seccomp_plan(cli, profile)?;
    let landlock = confine::landlock_plan(cli, profile, visible, host.landlock_abi)?;
    let mut warnings = confine::warnings(profile, &seccomp, &landlock);
    warnings.extend(
        refused
            .into_iter()
            .chain(download_dir_warnings(profile, vars)),
    );
    let enforcement = [seccomp.summary(), landlock.summary()]
        .into_iter()
        .chain(vcs_line)
        .collect();
    Ok((seccomp, landlock, warnings, enforcement))
}

/// What the mounts stage decides besides the mounts.
struct Gathered {
    mounts: Vec<Mount>,
    hostname: OsString,
    net: network::NetPlan,
    records: Option<PathBuf>,
    dbus: Option<(dbus::DbusPlan, String)>,
    agent: Option<PathBuf>,
    vcs: VcsMode,
    git_staged: Vec<vcs::Staged>,
    vcs_line: Option<String>,
}

/// Every mount, in order: the profile's (given), the network's files, the session
/// bus, the terminal, the command line's, the ssh agent, the version-control
/// protection.
fn gather_mounts(
    cli: &Cli,
    host: &Host,
    fs: &dyn HostFs,
    profile: &Resolved,
    mut mounts: Vec<Mount>,
    net: NetArg,
    (notices, skipped): (&mut Vec<String>, &mut Vec<String>),
) -> Result<Gathered> {
    let hostname = (cli.hostname.clone())
        .or_else(|| profile.hostname.clone().map(OsString::from))
        .unwrap_or_else(|| "sbx".into());
    let net = network_plan(cli, host, fs, net, &hostname, &mut mounts)?;
    let located = crate::record::dir_for(host);
    notices.extend(crate::record::problems_notice(&located));
    let records = located.dir;
    let dbus = session_bus(profile, host, fs, records.as_deref(), &mut mounts, skipped)?;
    mounts.extend(terminal(host, &mounts));
    for (kind, value) in &cli.mount_order {
        mounts.push(cli_mount(*kind, value, host, fs)?);
    }
    let agent = ssh_agent(cli, host, fs, &mut mounts, notices)?;
    let vcs = vcs_mode(cli, profile);
    let path = host.var("PATH").map(|p| p.as_os_str());
    let (git_staged, vcs_line) = vcs::plan(vcs, &mut mounts, fs, path, notices)?;
    Ok(Gathered {
        mounts,
        hostname,
        net,
        records,
        dbus,
        agent,
        vcs,
        git_staged,
        vcs_line,
    })
}

/// The network: with `--net user`, pasta's plan and the sandbox's resolv.conf and
/// hosts (which join the mounts).
fn network_plan(
    cli: &Cli,
    host: &Host,
    fs: &dyn HostFs,
    net: NetArg,
    hostname: &OsStr,
    mounts: &mut Vec<Mount>,
) -> Result<network::NetPlan> {
    let pasta = fs.is_executable_file(Path::new(network::PASTA));
    let (net, files) = network::plan(
        net,
        &cli.publish,
        &cli.dns,
        &hostname.to_string_lossy(),
        pasta,
        host.tun_usable,
    )?;
    mounts.extend(files);
    Ok(net)
}

/// What the sandbox may do to version-control metadata: the command line's, else
/// the profile's, else read-only.
fn vcs_mode(cli: &Cli, profile: &Resolved) -> VcsMode {
    match (cli.vcs_writable, cli.vcs) {
        (true, _) => VcsMode::Writable,
        (false, Some(m)) => m,
        (false, None) => profile.vcs.unwrap_or(VcsMode::ReadOnly),
    }
}

/// The session bus through xdg-dbus-proxy, when the profile asks for it: its socket
/// joins the mounts; the plan and the address the command is given are returned.
fn session_bus(
    profile: &Resolved,
    host: &Host,
    fs: &dyn HostFs,
    records: Option<&Path>,
    mounts: &mut Vec<Mount>,
    skipped: &mut Vec<String>,
) -> Result<Option<(dbus::DbusPlan, String)>> {
    let runtime_inside = host
        .var("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|r| r.is_absolute())
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", host.uid)));
    let (dbus, dbus_notice) = dbus::plan(
        &profile.dbus,
        host.var("DBUS_SESSION_BUS_ADDRESS")
            .map(|v| v.to_string_lossy())
            .as_deref(),
        records,
        host.pid,
        &runtime_inside,
        fs.is_executable_file(Path::new(dbus::PROXY)),
    )?;
    // No session bus is ordinary (a server, a CI runner): said with -v only.
    skipped.extend(dbus_notice);
    Ok(dbus.map(|(plan, mount, address)| {
        mounts.push(mount);
        (plan, address)
    }))
}

/// The terminal the command is given, at /dev/console of the sandbox's /dev (as
/// LXC and systemd-nspawn show it): `tty`, ttyname(3) and GPG_TTY=$(tty) then work,
/// glibc finding the device there, and no other host terminal is shown. The command
/// holds this terminal open already; the bind adds no access.
fn terminal(host: &Host, mounts: &[Mount]) -> Option<Mount> {
    let tty = host.tty.as_ref()?;
    mounts
        .iter()
        .any(|m| matches!(&m.op, MountOp::Dev { dst, .. } if dst == Path::new("/dev")))
        .then(|| Mount {
            op: MountOp::Bind {
                src: tty.clone(),
                dst: "/dev/console".into(),
                access: Access::Device,
            },
            origin: format!("the terminal sbx was given ({})", tty.display()),
        })
}

/// --ssh-agent: the agent's socket, at its own path (returned, for SSH_AUTH_SOCK).
fn ssh_agent(
    cli: &Cli,
    host: &Host,
    fs: &dyn HostFs,
    mounts: &mut Vec<Mount>,
    notices: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    if !cli.ssh_agent {
        return Ok(None);
    }
    let sock = host
        .var("SSH_AUTH_SOCK")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| {
            Error::new(
                "--ssh-agent",
                "SSH_AUTH_SOCK is unset: start an agent (eval $(ssh-agent)) or unlock your keyring",
            )
        })?;
    let real = fs.canonicalize(&sock).map_err(|e| {
        Error::new(
            "--ssh-agent",
            format!("SSH_AUTH_SOCK {}: {e}", sock.display()),
        )
    })?;
    if fs.entry(&real) != crate::host::Entry::Other {
        return Err(Error::new(
            "--ssh-agent",
            format!("SSH_AUTH_SOCK {} is not a socket", sock.display()),
        ));
    }
    mounts.push(Mount {
        op: MountOp::Bind {
            src: real,
            dst: sock.clone(),
            access: Access::ReadOnly,
        },
        origin: "--ssh-agent".into(),
    });
    notices.push(format!(
        "--ssh-agent: the sandbox can use every key loaded in the agent at {} while it runs",
        sock.display()
    ));
    Ok(Some(sock))
}

/// The mounts once played through: those the launch will make (a mask with nothing
/// to hide is left out), those the sandbox will see (for Landlock), and the tree.
struct Settled<'a> {
    mounts: Vec<Mount>,
    visible: Vec<Mount>,
    built: tree::Built<'a>,
}

/// Every op runs, in order, as in bubblewrap; one that cannot is refused now, as
/// --dry-run refuses it. A later mount over an earlier one wins and what it covers
/// is gone: Landlock rules and the trust rule see only what is left.
fn settle<'a>(
    mounts: Vec<Mount>,
    fs: &'a dyn HostFs,
    create: &[PathBuf],
    locs: &Locations,
    profile: &Resolved,
    host: &Host,
) -> Result<Settled<'a>> {
    overlay_lowers_usable(&mounts, fs)?;
    let built = tree::check(&mounts, fs, create)?;
    // What the sandbox will see, from the tree played through: the mounts still
    // standing (not a textual guess: a symlink that changed nothing hides nothing).
    let standing = built.standing();
    let visible: Vec<Mount> = mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            standing.contains(i) || matches!(m.op, MountOp::File { .. }) && built.exists(m.op.dst())
        })
        .map(|(_, m)| m.clone())
        .collect();
    // ~/.config/sbx/profiles is where a later run without XDG_CONFIG_HOME looks:
    // protected whatever this run's XDG_CONFIG_HOME says.
    let mut protected = profile.dirs.clone();
    protected.push(host.home.join(".config/sbx/profiles"));
    trust::check(&mounts, &built, locs, &protected, fs)?;
    // A mask with nothing to hide is left out of the plan (the launch would look and
    // skip it): a long list of masks costs a launch only what exists.
    let idle: std::collections::BTreeSet<usize> = built.idle_masks().iter().copied().collect();
    let mounts = mounts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !idle.contains(i))
        .map(|(_, m)| m)
        .collect();
    Ok(Settled {
        mounts,
        visible,
        built,
    })
}

fn check_hostname(hostname: &OsStr, cli: &Cli, profile: &Resolved) -> Result<()> {
    if hostname.is_empty() || hostname.len() > 64 || hostname.as_bytes().contains(&0) {
        let step = match cli.hostname {
            Some(_) => "--hostname".to_string(),
            None => profile.where_set("hostname"),
        };
        return Err(Error::new(step, "must be 1 to 64 bytes without NUL"));
    }
    Ok(())
}

/// Where the command starts: `--cwd`, the profile's `cwd`, else the first of the
/// current directory, the home and `/` that exists inside. A required one must be
/// there once the tree is built (the launch would stop at its chdir with this
/// message).
fn working_dir(
    cli: &Cli,
    profile: &Resolved,
    vars: &Vars,
    host: &Host,
    built: &tree::Built,
) -> Result<(Vec<PathBuf>, bool)> {
    let (cwd, required) = match (&cli.cwd, &profile.cwd) {
        (Some(c), _) => (vec![sandbox_path(c, "--cwd")?], true),
        (None, Some((c, loc))) => {
            let c =
                expand(c, vars).map_err(|e| Error::new(loc.to_string(), format!("cwd: {e}")))?;
            (
                vec![sandbox_path(c.as_ref(), &format!("{loc}: cwd"))?],
                true,
            )
        }
        (None, None) => {
            let mut v: Vec<PathBuf> = host.cwd.iter().cloned().collect();
            v.push(host.home.clone());
            v.push("/".into());
            (v, false)
        }
    };
    if required && !built.is_dir(&cwd[0]) {
        return Err(Error::new(
            "--cwd",
            format!("{} does not exist inside the sandbox", cwd[0].display()),
        ));
    }
    Ok((cwd, required))
}

/// What the grants add to the environment: the agent's socket, the proxied bus,
/// and, for `--vcs commit`, git told not to pack on its own.
fn env_grants(
    env: &mut Vec<(OsString, OsString)>,
    agent: Option<PathBuf>,
    bus_address: Option<String>,
    git_staged: bool,
) {
    if let Some(sock) = agent {
        env.retain(|(k, _)| k != "SSH_AUTH_SOCK");
        env.push(("SSH_AUTH_SOCK".into(), sock.into()));
    }
    if let Some(address) = bus_address {
        env.retain(|(k, _)| k != "DBUS_SESSION_BUS_ADDRESS");
        env.push(("DBUS_SESSION_BUS_ADDRESS".into(), address.into()));
    }
    // --vcs commit keeps only loose objects (each checked against its name): git
    // must not pack them on its own (gc --auto after a large commit, maintenance),
    // or refs would point at objects that never reach the host.
    // git-config(1), ENVIRONMENT: GIT_CONFIG_COUNT adds to every other source.
    if git_staged && !env.iter().any(|(k, _)| k == "GIT_CONFIG_COUNT") {
        for (k, v) in [
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "gc.auto"),
            ("GIT_CONFIG_VALUE_0", "0"),
            ("GIT_CONFIG_KEY_1", "maintenance.auto"),
            ("GIT_CONFIG_VALUE_1", "false"),
        ] {
            env.push((k.into(), v.into()));
        }
    }
}

/// `--cap-add`: capabilities the command keeps, valid only in the sandbox's user
/// namespace. CAP_SYS_ADMIN is refused: mount flags set inside the sandbox's own
/// user namespace are not locked, so it could remount read-only binds writable and
/// unmount masks.
fn kept_caps(cli: &Cli, notices: &mut Vec<String>) -> Result<Vec<u32>> {
    let mut keep = Vec::new();
    for name in &cli.cap_add {
        let cap = caps::parse(name)
            .ok_or_else(|| Error::new("--cap-add", format!("unknown capability {name:?}")))?;
        if cap == caps::CAP_SYS_ADMIN {
            return Err(Error::new(
                "--cap-add",
                "CAP_SYS_ADMIN is refused: it would let the command remount read-only binds writable and unmount masks",
            ));
        }
        if !keep.contains(&cap) {
            keep.push(cap);
            notices.push(format!(
                "keeping {} for the command: it is valid only in the sandbox's user namespace, over what that namespace owns",
                caps::name(cap)
            ));
        }
    }
    Ok(keep)
}

/// What was said while `${XDG_DOWNLOAD_DIR}` was looked up (a fallback to
/// ~/Downloads), when the profile uses it.
fn download_dir_warnings(profile: &Resolved, vars: &Vars) -> Vec<String> {
    let used = profile.mounts.iter().any(|(e, _)| {
        e.src
            .as_deref()
            .is_some_and(|s| s.contains("${XDG_DOWNLOAD_DIR}"))
    });
    if used {
        vars.1.clone()
    } else {
        Vec::new()
    }
}

/// The reporting options: distinct descriptors, a valid name.
fn check_reporting(cli: &Cli) -> Result<()> {
    if cli.info_fd.is_some() && cli.info_fd == cli.status_fd {
        return Err(Error::new(
            "--status-fd",
            "the same descriptor as --info-fd: give each its own",
        ));
    }
    if let Some(n) = &cli.name {
        if !crate::record::valid_name(n) {
            return Err(Error::new(
                "--name",
                format!(
                    "{n:?}: use 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`"
                ),
            ));
        }
    }
    Ok(())
}

/// overlayfs takes a lower directory only from an ordinary filesystem with nothing
/// mounted below it (the kernel answers EINVAL otherwise: "failed to clone
/// lowerpath"): refused here, naming the mount in the way.
fn overlay_lowers_usable(mounts: &[Mount], fs: &dyn HostFs) -> Result<()> {
    let lowers: Vec<(&Path, &str)> = mounts
        .iter()
        .filter_map(|m| match &m.op {
            MountOp::TmpOverlay { src, .. } => Some((src.as_path(), m.origin.as_str())),
            _ => None,
        })
        .collect();
    if lowers.is_empty() {
        return Ok(());
    }
    let info = fs.mountinfo();
    // (mount point, filesystem type) of every mount here.
    let table: Vec<(PathBuf, String)> = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            let point = f.get(4)?.replace("\\040", " ");
            Some((PathBuf::from(point), f.get(dash + 1)?.to_string()))
        })
        .collect();
    for (lower, origin) in lowers {
        if let Some((below, _)) = table
            .iter()
            .find(|(p, _)| p.starts_with(lower) && p != lower)
        {
            return Err(Error::new(
                origin,
                format!(
                    "{} has another filesystem mounted below it ({}): overlayfs cannot take it as a lower directory",
                    lower.display(),
                    below.display()
                ),
            ));
        }
        let holder = table
            .iter()
            .filter(|(p, _)| lower.starts_with(p))
            .max_by_key(|(p, _)| p.components().count());
        if let Some((_, kind)) = holder.filter(|(_, k)| {
            matches!(
                k.as_str(),
                "proc"
                    | "sysfs"
                    | "devpts"
                    | "cgroup"
                    | "cgroup2"
                    | "securityfs"
                    | "debugfs"
                    | "tracefs"
                    | "bpf"
                    | "configfs"
                    | "fusectl"
                    | "mqueue"
                    | "pstore"
            )
        }) {
            return Err(Error::new(
                origin,
                format!(
                    "{} is on {kind}: overlayfs cannot take it as a lower directory",
                    lower.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Where `command` is on the host (searched in the caller's PATH, as the user), if
/// no mount of the plan shows that place inside: the hint for a command that is not
/// found inside (`~/.cargo/bin/cargo` under `ci`).
fn not_found_hint(
    command: &OsStr,
    host: &Host,
    fs: &dyn HostFs,
    mounts: &[Mount],
    profile: &str,
) -> Option<String> {
    let name = Path::new(command);
    let on_host: PathBuf = if command.as_bytes().contains(&b'/') {
        let p = lexical_abs(command, host.cwd.as_deref());
        fs.is_executable_file(&p).then_some(p)?
    } else {
        let path = host.var("PATH")?;
        path.as_bytes()
            .split(|b| *b == b':')
            .filter(|d| d.starts_with(b"/"))
            .map(|d| Path::new(OsStr::from_bytes(d)).join(name))
            .find(|p| fs.is_executable_file(p))?
    };
    let real = fs
        .canonicalize(&on_host)
        .unwrap_or_else(|_| on_host.clone());
    // Shown inside at the same path by a bind (a bind elsewhere does not run it).
    let shown = |p: &Path| {
        mounts.iter().rev().any(|m| match &m.op {
            MountOp::Bind { src, dst, .. } | MountOp::TmpOverlay { src, dst, .. } => {
                p.strip_prefix(src).is_ok_and(|rest| dst.join(rest) == p)
            }
            _ => false,
        })
    };
    // A command that is a link (pipx's ~/.local/bin/x) needs where it leads too.
    let mut dirs: Vec<&Path> = Vec::new();
    for p in [&on_host, &real] {
        let dir = p.parent().unwrap_or(Path::new("/"));
        if !shown(p) && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if dirs.is_empty() {
        return None;
    }
    let quote = |p: &Path| {
        let s = p.to_string_lossy();
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    let grants: Vec<String> = dirs
        .iter()
        .map(|d| format!("--ro-bind {}", quote(d)))
        .collect();
    let toolchain = match on_host.to_string_lossy().contains("/.cargo/") {
        true => " (a Rust toolchain needs ~/.rustup too)",
        false => "",
    };
    Some(format!(
        "on the host it is {}, which profile {profile} does not grant: add {}{toolchain}, \
         or a profile entry for it",
        on_host.display(),
        grants.join(" ")
    ))
}

pub use limits::profile_rlimits;

fn cli_mount(kind: MountArg, value: &OsStr, host: &Host, fs: &dyn HostFs) -> Result<Mount> {
    let origin = format!("{} {}", kind.flag(), value.to_string_lossy());
    let what = origin.as_str();
    let op = match kind {
        MountArg::RoBind | MountArg::Bind | MountArg::DevBind | MountArg::OverlayTmp => {
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
                MountArg::DevBind => Access::Device,
                MountArg::OverlayTmp => {
                    return Ok(Mount {
                        op: MountOp::TmpOverlay {
                            src: real,
                            dst,
                            size: TMPFS_SIZE,
                        },
                        origin,
                    })
                }
                MountArg::Tmpfs | MountArg::Dir | MountArg::Symlink => unreachable!("not a bind"),
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

fn build_env(cli: &Cli, host: &Host, profile: &Resolved) -> Result<Vec<(OsString, OsString)>> {
    if let Some(k) = cli
        .keep_env
        .iter()
        .find(|k| k.is_empty() || k.as_bytes().contains(&b'='))
    {
        return Err(Error::new(
            "--keep-env",
            format!("{:?} is not a variable name", k),
        ));
    }
    let mut env: Vec<(OsString, OsString)> = host
        .env
        .iter()
        .filter(|(k, _)| {
            allowed_env(k)
                || cli.keep_env.iter().any(|x| x == k)
                || profile.env_keep.iter().any(|x| keep_matches(x, k))
        })
        .cloned()
        .collect();
    let set = set_var;
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
    profile_env_ops(&mut env, profile)?;
    cli_env_ops(&mut env, cli)?;
    Ok(env)
}

/// Set one variable (replacing any of its name).
fn set_var(env: &mut Vec<(OsString, OsString)>, k: &OsStr, v: OsString) {
    env.retain(|(n, _)| n != k);
    env.push((k.to_os_string(), v));
}

/// The profile's `[env] set` and `unset`, in order.
fn profile_env_ops(env: &mut Vec<(OsString, OsString)>, profile: &Resolved) -> Result<()> {
    let set = set_var;
    for op in &profile.env_ops {
        match op {
            EnvOp::Set(k, v) => {
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                    return Err(Error::new(
                        format!("profile {}: env.set", profile.name),
                        format!("{k:?} is not a variable name (or its value holds a NUL byte)"),
                    ));
                }
                set(env, OsStr::new(k), v.into())
            }
            EnvOp::Unset(k) => env.retain(|(n, _)| n != k.as_str()),
        }
    }
    Ok(())
}

/// `--setenv` and `--unsetenv`, in order.
fn cli_env_ops(env: &mut Vec<(OsString, OsString)>, cli: &Cli) -> Result<()> {
    let set = set_var;
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
                    env,
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
    Ok(())
}

/// File content for --dry-run: text as it is; anything else (an X11 cookie) only by size.
pub(crate) fn text_or_size<S: Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    match std::str::from_utf8(v) {
        Ok(t) => s.serialize_str(t),
        Err(_) => s.serialize_str(&format!("<{} bytes, not shown>", v.len())),
    }
}

pub(crate) fn octal<S: Serializer>(m: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{m:04o}"))
}

pub(crate) fn lossy<S: Serializer, T: AsRef<OsStr>>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.as_ref().to_string_lossy())
}

fn lossy_opt<S: Serializer, T: AsRef<OsStr>>(
    v: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => lossy(v, s),
        None => s.serialize_none(),
    }
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

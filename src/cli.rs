//! The command line (sbx(1), OPTIONS). Parsing only: turning options into a plan is
//! `plan`'s job. Mount options keep their command-line order, which is the order
//! they are applied in.

use std::ffi::OsString;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};

#[derive(Parser, Debug, Default)]
#[command(
    name = "sbx",
    version,
    about = "Run a command in a rootless sandbox",
    long_about = "Run COMMAND in a rootless sandbox: a new user namespace (mapped by newuidmap/newgidmap \
                  when subordinate ids exist, else a single id), new mount, pid, ipc, uts, net and cgroup \
                  namespaces, a fresh tmpfs root holding only what is granted, no capabilities and \
                  no_new_privs.\n\nEverything from the first non-option argument on belongs to COMMAND: \
                  `sbx ls -l` runs `ls -l`.\n\nIn SRC:DST arguments, write `\\:` for a colon inside a \
                  path and `\\\\` for a backslash.",
    override_usage = "sbx [OPTIONS] [--] COMMAND [ARG]...",
    after_help = "Exit status: the command's own, 128+N if it died of signal N; 125 if sbx itself failed, \
                  126 if COMMAND cannot be executed, 127 if it was not found.",
    // One action at a time: `--profiles --list` is an error naming both, never one of
    // them run in silence.
    group(clap::ArgGroup::new("action").multiple(false).args([
        "profiles", "print_profile", "check_profile", "list", "enter", "inspect", "kill", "doctor",
    ]))
)]
pub struct Cli {
    /// The security profile: a NAME (looked up in $XDG_CONFIG_HOME/sbx/profiles, /etc/sbx/profiles, then the built-ins) or a PATH; default: default
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH")]
    pub profile: Option<String>,

    /// List the available profiles, where each comes from and what it is for
    #[arg(long = "profiles")]
    pub profiles: bool,

    /// Print a profile fully resolved (includes merged, variables substituted)
    #[arg(long = "print-profile", value_name = "NAME|PATH")]
    pub print_profile: Option<String>,

    /// Check a profile file and report every error found
    #[arg(long = "check-profile", value_name = "PATH")]
    pub check_profile: Option<String>,

    /// Name this sandbox (letters, digits, . _ -); default: PROFILE-PID
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,

    /// List your running sandboxes: NAME, PID, PROFILE, NET, UPTIME, COMMAND (--json for scripts)
    #[arg(long = "list")]
    pub list: bool,

    /// Run CMD (default: your shell) inside the running sandbox NAME, confined as its command is
    #[arg(long = "enter", value_name = "NAME")]
    pub enter: Option<String>,

    /// Show how process PID (or sandbox NAME) is isolated: namespaces, id maps, capabilities, no_new_privs, seccomp, Landlock, mounts
    #[arg(long = "inspect", value_name = "PID|NAME")]
    pub inspect: Option<String>,

    /// Check what this host gives sbx (user namespaces, subordinate ids, Landlock, the process ceiling, cgroup limits, network, records), each missing piece with its fix
    #[arg(long = "doctor")]
    pub doctor: bool,

    /// Signal the running sandbox NAME (--signal, default TERM), then KILL after --grace seconds, and wait until it is gone
    #[arg(long = "kill", value_name = "NAME")]
    pub kill: Option<String>,

    /// The signal --kill sends first (name or number)
    #[arg(long = "signal", value_name = "SIG", requires = "kill")]
    pub signal: Option<String>,

    /// Seconds --kill waits before SIGKILL (default 5)
    #[arg(long = "grace", value_name = "SECS", requires = "kill", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub grace: Option<f64>,

    /// Write one JSON object to FD once the sandbox is set up (pid, name, namespaces)
    #[arg(long = "info-fd", value_name = "FD", allow_negative_numbers = true)]
    pub info_fd: Option<i32>,

    /// Write one JSON object to FD when the sandbox has ended (exit code or signal)
    #[arg(long = "status-fd", value_name = "FD", allow_negative_numbers = true)]
    pub status_fd: Option<i32>,

    /// Machine-readable output (JSON) where it applies
    #[arg(long = "json")]
    pub json: bool,

    /// Bind SRC read-only (recursively, nosuid, nodev) at DST (default: SRC)
    #[arg(long = "ro-bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub ro_bind: Vec<OsString>,

    /// Bind SRC read-write (nosuid, nodev) at DST (default: SRC)
    #[arg(long = "bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub bind: Vec<OsString>,

    /// Bind SRC read-write with device access (nosuid) at DST (default: SRC)
    #[arg(long = "dev-bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub dev_bind: Vec<OsString>,

    /// Overlay SRC at DST (default: SRC): writes go to a 1 GiB tmpfs and are discarded when the sandbox ends
    #[arg(long = "overlay-tmp", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub overlay_tmp: Vec<OsString>,

    /// Mount an empty tmpfs (1 GiB, mode 0755) at DST
    #[arg(long = "tmpfs", value_name = "DST", action = ArgAction::Append)]
    pub tmpfs: Vec<OsString>,

    /// Create the directory DST (and its parents) inside the sandbox
    #[arg(long = "dir", value_name = "DST", action = ArgAction::Append)]
    pub dir: Vec<OsString>,

    /// Create the symlink LINK pointing to TARGET inside the sandbox
    #[arg(long = "symlink", value_name = "TARGET:LINK", action = ArgAction::Append)]
    pub symlink: Vec<OsString>,

    /// Network: none (own namespace, loopback only), host (share the host's), user (own namespace with outside access through pasta) or user:host-loopback; default: the profile's, else none
    #[arg(long = "net", value_name = "MODE", value_enum)]
    pub net: Option<NetArg>,

    /// With --net user: forward [ADDR/]HOSTPORT on the host (ADDR default 127.0.0.1) to SANDBOXPORT inside, tcp unless /udp
    #[arg(long = "publish", value_name = "[ADDR/]HOSTPORT:SANDBOXPORT[/tcp|/udp]", action = ArgAction::Append)]
    pub publish: Vec<String>,

    /// With --net user: the resolver pasta forwards the sandbox's DNS queries to (default: the host's first nameserver)
    #[arg(long = "dns", value_name = "ADDR", action = ArgAction::Append)]
    pub dns: Vec<String>,

    /// User id inside the sandbox (default: your own)
    #[arg(long = "uid", value_name = "UID", allow_negative_numbers = true)]
    pub uid: Option<u32>,

    /// Group id inside the sandbox (default: your own)
    #[arg(long = "gid", value_name = "GID", allow_negative_numbers = true)]
    pub gid: Option<u32>,

    /// Hostname inside the sandbox (default: sbx)
    #[arg(long = "hostname", value_name = "NAME", allow_hyphen_values = true)]
    pub hostname: Option<OsString>,

    /// Working directory inside the sandbox (default: the current one if it exists inside, else $HOME, else /)
    #[arg(long = "cwd", value_name = "DIR", allow_hyphen_values = true)]
    pub cwd: Option<OsString>,

    /// Set an environment variable for the command
    #[arg(long = "setenv", value_name = "KEY=VALUE", action = ArgAction::Append, allow_hyphen_values = true)]
    pub setenv: Vec<OsString>,

    /// Remove an environment variable
    #[arg(long = "unsetenv", value_name = "KEY", action = ArgAction::Append, allow_hyphen_values = true)]
    pub unsetenv: Vec<OsString>,

    /// Pass a variable of sbx's environment through (the default allow-list is PATH HOME USER LOGNAME TERM LANG LC_* TZ)
    #[arg(long = "keep-env", value_name = "KEY", action = ArgAction::Append, allow_hyphen_values = true)]
    pub keep_env: Vec<OsString>,

    /// Grant the ssh-agent of SSH_AUTH_SOCK (its socket and the variable): the sandbox can use every key loaded in the agent while it runs
    #[arg(long = "ssh-agent")]
    pub ssh_agent: bool,

    /// How ids are mapped, over the profile's `ids`: auto (subordinate ids when usable, else your own id alone), subordinate (required), single
    #[arg(long = "ids", value_name = "MODE")]
    pub ids: Option<IdsArg>,

    /// Kill the whole sandbox after SECS seconds (fractions allowed); sbx then exits 124
    #[arg(long = "timeout", value_name = "DURATION", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<f64>,

    /// Set a resource limit over the profile's [limits]: nofile, nproc (the sandbox's own processes), fsize, as, core, cpu (seconds), stack, memlock, or memory, cpus, pids (cgroup v2); VALUE `unlimited` lifts the profile's
    #[arg(long = "limit", value_name = "KEY=VALUE", action = ArgAction::Append)]
    pub limit: Vec<String>,

    /// Memory ceiling for the whole sandbox (cgroup v2 memory.max, no swap), e.g. 2G; needs a delegated cgroup (sbx --doctor)
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPU time for the whole sandbox, in CPUs (cgroup v2 cpu.max; 0.5 = half of one CPU); needs a delegated cgroup
    #[arg(long = "cpus", value_name = "N")]
    pub cpus: Option<String>,

    /// Process (thread) ceiling for the whole sandbox (cgroup v2 pids.max); needs a delegated cgroup. Without one, --limit nproc=N
    #[arg(long = "pids", value_name = "N")]
    pub pids: Option<String>,

    /// Keep a capability (e.g. NET_RAW); it only acts inside the sandbox's user namespace
    #[arg(long = "cap-add", value_name = "CAP", action = ArgAction::Append)]
    pub cap_add: Vec<String>,

    /// Make a hardening layer mandatory: landlock (all of it, or exit 125), seccomp (a profile turning it off is an error) or cgroup (a profile's best-effort cgroup limits are required)
    #[arg(long = "require", value_name = "LAYER", value_enum, action = ArgAction::Append)]
    pub require: Vec<Layer>,

    /// What the sandbox may do to version-control metadata (.git, .hg) in its writable directories: read-only, commit (git commit works; what git executes stays read-only), writable; the profile's `vcs`, else read-only
    #[arg(long = "vcs", value_name = "MODE", value_enum)]
    pub vcs: Option<crate::profile::schema::VcsMode>,

    /// Same as --vcs writable: the sandbox may write hooks and config the host's git will run
    #[arg(long = "vcs-writable", conflicts_with = "vcs")]
    pub vcs_writable: bool,

    /// Print the resolved plan as JSON and run nothing
    #[arg(long = "dry-run", conflicts_with = "action")]
    pub dry_run: bool,

    /// Trace each setup step on stderr
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Say nothing but errors (silences notices such as the single-id map)
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// The command and its arguments
    // No `allow_hyphen_values`: a word starting with `-` before the command is an
    // option, and an unknown one is an error with the nearest option suggested
    // (`--porfile`); after the command's first word everything is the command's.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        required_unless_present_any = ["profiles", "print_profile", "check_profile", "list", "enter", "inspect", "kill", "doctor"],
        num_args = 1..
    )]
    pub command: Vec<OsString>,

    /// Mount options in the order given: (kind, value). Filled from the arg indices.
    #[arg(skip)]
    pub mount_order: Vec<(MountArg, OsString)>,

    /// --setenv/--unsetenv in the order given: (Some(value) = set, None = unset).
    #[arg(skip)]
    pub env_order: Vec<EnvArg>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetArg {
    /// Own network namespace with loopback up
    #[default]
    None,
    /// The host's network namespace
    Host,
    /// Own network namespace connected to the outside by pasta (package passt); the host's loopback services stay out of reach
    User,
    /// As user, and the host's loopback is reachable inside at host.sbx.internal
    #[value(name = "user:host-loopback")]
    #[serde(rename = "user:host-loopback")]
    UserHostLoopback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdsArg {
    Auto,
    Subordinate,
    Single,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layer {
    Landlock,
    Seccomp,
    Cgroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountArg {
    RoBind,
    Bind,
    DevBind,
    OverlayTmp,
    Tmpfs,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvArg {
    Set(OsString),
    Unset(OsString),
}

impl MountArg {
    pub fn flag(self) -> &'static str {
        match self {
            MountArg::RoBind => "--ro-bind",
            MountArg::Bind => "--bind",
            MountArg::DevBind => "--dev-bind",
            MountArg::OverlayTmp => "--overlay-tmp",
            MountArg::Tmpfs => "--tmpfs",
            MountArg::Dir => "--dir",
            MountArg::Symlink => "--symlink",
        }
    }
}

/// A duration as timeout(1) takes it: a number (fractions allowed) of seconds, or
/// with a unit suffix `s`, `m`, `h` or `d`. At most one year.
fn parse_timeout(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        Some((i, 'd')) => (&t[..i], 86400.0),
        _ => (t, 1.0),
    };
    let ok = !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match num.parse::<f64>() {
        Ok(v) if ok && v * unit > 0.0 && v * unit <= 31_536_000.0 => Ok(v * unit),
        _ => Err(format!(
            "{s:?} is not a duration between 0 and one year (seconds, or with a suffix: 30s, 5m, 2h, 1d; fractions allowed: 1.5)"
        )),
    }
}

/// Parse argv. `Err` carries clap's error, which knows how to print itself; the
/// caller maps it to exit 125 (or 0 for --help/--version).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // An action runs no command (but --enter, which runs one inside): a command
    // given with one would be silently ignored.
    let action = [
        (cli.profiles, "--profiles"),
        (cli.print_profile.is_some(), "--print-profile"),
        (cli.check_profile.is_some(), "--check-profile"),
        (cli.list, "--list"),
        (cli.inspect.is_some(), "--inspect"),
        (cli.kill.is_some(), "--kill"),
        (cli.doctor, "--doctor"),
    ]
    .into_iter()
    .find(|(on, _)| *on);
    if let (Some((_, name)), false) = (action, cli.command.is_empty()) {
        return Err(Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "{name} runs no command, but {:?} was given",
                cli.command[0].to_string_lossy()
            ),
        ));
    }

    let mut order: Vec<(usize, MountArg, OsString)> = Vec::new();
    for (id, kind) in [
        ("ro_bind", MountArg::RoBind),
        ("bind", MountArg::Bind),
        ("dev_bind", MountArg::DevBind),
        ("overlay_tmp", MountArg::OverlayTmp),
        ("tmpfs", MountArg::Tmpfs),
        ("dir", MountArg::Dir),
        ("symlink", MountArg::Symlink),
    ] {
        if let (Some(idx), Some(vals)) = (matches.indices_of(id), matches.get_many::<OsString>(id))
        {
            for (i, v) in idx.zip(vals) {
                order.push((i, kind, v.clone()));
            }
        }
    }
    order.sort_by_key(|(i, _, _)| *i);
    cli.mount_order = order.into_iter().map(|(_, k, v)| (k, v)).collect();

    let mut env: Vec<(usize, EnvArg)> = Vec::new();
    if let (Some(idx), Some(vals)) = (
        matches.indices_of("setenv"),
        matches.get_many::<OsString>("setenv"),
    ) {
        env.extend(idx.zip(vals).map(|(i, v)| (i, EnvArg::Set(v.clone()))));
    }
    if let (Some(idx), Some(vals)) = (
        matches.indices_of("unsetenv"),
        matches.get_many::<OsString>("unsetenv"),
    ) {
        env.extend(idx.zip(vals).map(|(i, v)| (i, EnvArg::Unset(v.clone()))));
    }
    env.sort_by_key(|(i, _)| *i);
    cli.env_order = env.into_iter().map(|(_, e)| e).collect();
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_starts_at_first_positional() {
        let cli = parse(["sbx", "ls", "-l", "--bind", "x"]).unwrap();
        assert_eq!(cli.command, ["ls", "-l", "--bind", "x"]);
        assert!(cli.mount_order.is_empty());
    }

    #[test]
    fn double_dash_ends_options() {
        let cli = parse(["sbx", "--hostname", "h", "--", "--weird", "-v"]).unwrap();
        assert_eq!(cli.command, ["--weird", "-v"]);
        assert!(!cli.verbose);
    }

    #[test]
    fn mount_options_keep_their_order() {
        let cli = parse([
            "sbx",
            "--tmpfs",
            "/a",
            "--ro-bind",
            "/b",
            "--dir",
            "/c",
            "--ro-bind",
            "/d",
            "--symlink",
            "x:/e",
            "true",
        ])
        .unwrap();
        let kinds: Vec<_> = cli
            .mount_order
            .iter()
            .map(|(k, v)| (*k, v.to_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                (MountArg::Tmpfs, "/a"),
                (MountArg::RoBind, "/b"),
                (MountArg::Dir, "/c"),
                (MountArg::RoBind, "/d"),
                (MountArg::Symlink, "x:/e"),
            ]
        );
    }

    #[test]
    fn env_options_keep_their_order() {
        let cli = parse([
            "sbx",
            "--unsetenv",
            "A",
            "--setenv",
            "A=1",
            "--unsetenv",
            "B",
            "true",
        ])
        .unwrap();
        assert_eq!(
            cli.env_order,
            [
                EnvArg::Unset("A".into()),
                EnvArg::Set("A=1".into()),
                EnvArg::Unset("B".into())
            ]
        );
    }

    #[test]
    fn durations_as_timeout_takes_them() {
        for (text, secs) in [
            ("30", 30.0),
            ("1.5", 1.5),
            ("30s", 30.0),
            ("5m", 300.0),
            ("2h", 7200.0),
            ("1d", 86400.0),
            ("0.5m", 30.0),
        ] {
            assert_eq!(parse_timeout(text), Ok(secs), "{text}");
        }
        for bad in [
            "", "0", "-1", "5x", "m", "1e3", "inf", "NaN", "2y", "366d", " s",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_unknown_option_before_the_command_is_an_error_with_a_suggestion() {
        let e = parse(["sbx", "--porfile", "dev", "--", "make"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(e.to_string().contains("--profile"), "{e}");
        // After the command's first word, everything is the command's.
        let cli = parse(["sbx", "make", "--porfile"]).unwrap();
        assert_eq!(cli.command, ["make", "--porfile"]);
        let cli = parse(["sbx", "--", "--porfile"]).unwrap();
        assert_eq!(cli.command, ["--porfile"]);
    }

    #[test]
    fn two_actions_are_an_error_naming_both() {
        let e = parse(["sbx", "--profiles", "--list"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let t = e.to_string();
        assert!(t.contains("--profiles") && t.contains("--list"), "{t}");
        let e = parse(["sbx", "--kill", "a", "--enter", "b"]).unwrap_err();
        assert!(e.to_string().contains("--kill") && e.to_string().contains("--enter"));
    }

    #[test]
    fn missing_command_is_an_error() {
        assert!(parse(["sbx", "--dry-run"]).is_err());
    }

    #[test]
    fn bad_net_value_is_an_error() {
        let e = parse(["sbx", "--net", "bogus", "true"]).unwrap_err();
        assert!(e.to_string().contains("--net"), "{e}");
    }
}

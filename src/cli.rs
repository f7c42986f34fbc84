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
        "completions",
    ]))
)]
pub struct Cli {
    /// The security profile: a NAME (looked up in $XDG_CONFIG_HOME/sbx/profiles, /etc/sbx/profiles, then the built-ins) or a PATH; default: default
    ///
    /// The profile: a NAME is looked up as $XDG_CONFIG_HOME/sbx/profiles/NAME.toml,
    /// then /etc/sbx/profiles/NAME.toml, then among the built-in profiles; a value
    /// containing / or ending in .toml is a path. Default: default.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH")]
    pub profile: Option<String>,

    /// List the available profiles, where each comes from and what it is for
    ///
    /// List the available profiles: name, where each comes from (user, system,
    /// built-in) and its description; one found earlier in the lookup order shadows
    /// later ones of the same name. With --json, as JSON.
    #[arg(long = "profiles")]
    pub profiles: bool,

    /// Print a profile fully resolved (includes merged, variables substituted)
    ///
    /// Print the profile fully resolved: includes merged, variables substituted,
    /// optional entries that do not apply here left out. The output is itself a valid
    /// profile. With --json, as JSON.
    #[arg(long = "print-profile", value_name = "NAME|PATH")]
    pub print_profile: Option<String>,

    /// Check a profile file and report every error found
    ///
    /// Check a profile file (and what it includes) and report every error found, each
    /// with its file, line and column. Exit 0 if it is valid, 125 if not.
    #[arg(long = "check-profile", value_name = "PATH")]
    pub check_profile: Option<String>,

    /// Name this sandbox (letters, digits, . _ -); default: PROFILE-PID
    ///
    /// Name the sandbox (1 to 64 letters, digits, ., _ or -; default: the profile's
    /// name and sbx's pid). Each running sandbox is recorded in
    /// $XDG_RUNTIME_DIR/sbx/NAME.json (else /run/user/UID/sbx/, else /tmp/sbx-UID/: the
    /// first that is, or can be made, a directory of the user's own with mode 0700; one
    /// another user created first, or a symlink, is passed over and never followed, and
    /// with none usable the sandbox runs unrecorded and sbx says so once) and the
    /// record is removed when it ends; a record left by a killed sbx is removed by the
    /// next sbx that reads the records. A second sandbox under a running name exits
    /// 125.
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,

    /// List your running sandboxes: NAME, PID, PROFILE, NET, UPTIME, COMMAND (--json for scripts)
    ///
    /// List your running sandboxes: NAME, PID (of the sandbox's PID 1), PROFILE, NET,
    /// UPTIME, COMMAND; with --json, a JSON array.
    #[arg(long = "list")]
    pub list: bool,

    /// Run CMD (default: your shell) inside the running sandbox NAME, confined as its command is
    ///
    /// Run the command after -- (default: your login shell) inside the running sandbox:
    /// its user namespace first, then mount, pid, ipc, uts, net and cgroup, all at once
    /// through a pidfd; with the same confinement as the sandbox's command (no
    /// capabilities, no_new_privs, the same Landlock rules, seccomp policy, rlimits and
    /// environment). Its exit status passes through. The default shell reads no startup
    /// file (bash with its no-profile and no-rc options, zsh -f, fish with no-config,
    /// ENV, BASH_ENV and ZDOTDIR unset, INPUTRC /etc/inputrc; an unknown shell is
    /// replaced by /bin/sh): the sandbox's home is the sandbox's to write, and its rc
    /// files would otherwise run on your terminal. The terminal is restored afterwards
    /// as for a launch.
    #[arg(long = "enter", value_name = "NAME")]
    pub enter: Option<String>,

    /// Show how process PID (or sandbox NAME) is isolated: namespaces, id maps, capabilities, no_new_privs, seccomp, Landlock, mounts
    ///
    /// For any process of yours (a sandbox's command for a NAME): each namespace with
    /// its inode and whether it is shared with the host, the id maps, the capability
    /// sets, NoNewPrivs, the seccomp mode, Landlock (known for sbx's sandboxes; the
    /// kernel offers no per-process query), the mount count, the rlimits in force (from
    /// /proc/PID/limits), the sandbox's tasks (processes and threads) and, with cgroup
    /// limits, the leaf with its ceilings and current usage (memory.current,
    /// memory.peak, pids.current, cpu usage); --json too, and --list --json gives the
    /// same limits and usage for each sandbox.
    #[arg(long = "inspect", value_name = "PID|NAME")]
    pub inspect: Option<String>,

    /// Check what this host gives sbx (user namespaces, subordinate ids, Landlock, the process ceiling, cgroup limits, network, records), each missing piece with its fix
    ///
    /// Report what this host gives sbx, one line each, with the fix for what is
    /// missing: user namespaces (naming Ubuntu's AppArmor restriction, Debian's
    /// kernel.unprivileged_userns_clone or user.max_user_namespaces when one is the
    /// cause), subordinate ids and the setuid newuidmap/newgidmap, Landlock, whether
    /// the process ceiling counts each sandbox's own processes (Linux 5.14), where
    /// cgroup limits would go (or why they cannot), pasta for --net user, seccomp,
    /// xdg-dbus-proxy, the display, sound and bus sockets a GUI profile would use, and
    /// where sandboxes are recorded. --json too. Exit status 0 unless sbx cannot run
    /// here at all (125).
    #[arg(long = "doctor")]
    pub doctor: bool,

    /// Signal the running sandbox NAME (--signal, default TERM), then KILL after --grace seconds, and wait until it is gone
    ///
    /// Signal the sandbox's PID 1 (which passes TERM, INT, HUP, QUIT, USR1 and USR2 on
    /// to the command), SIGKILL it after the grace period, and wait until it is gone.
    #[arg(long = "kill", value_name = "NAME")]
    pub kill: Option<String>,

    /// The signal --kill sends first (name or number)
    ///
    /// The signal --kill sends first (TERM by default; a name or a number).
    #[arg(long = "signal", value_name = "SIG", requires = "kill")]
    pub signal: Option<String>,

    /// Seconds --kill waits before SIGKILL (default 5)
    ///
    /// How long --kill waits before SIGKILL (default 5).
    #[arg(long = "grace", value_name = "SECS", requires = "kill", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub grace: Option<f64>,

    /// Write one JSON object to FD once the sandbox is set up (pid, name, namespaces)
    ///
    /// Once the sandbox is set up, write one JSON object to FD and close it:
    ///
    /// {"child-pid": PID, "launcher-pid": PID, "name": NAME,  "namespaces": {"user":
    /// INODE, "mnt": INODE, "pid": INODE, "ipc": INODE,                 "uts": INODE,
    /// "net": INODE, "cgroup": INODE}}
    ///
    /// child-pid is the sandbox's PID 1 (host pid), as bubblewrap's; the namespace
    /// numbers are the inodes of /proc/PID/ns/*.
    #[arg(long = "info-fd", value_name = "FD", allow_negative_numbers = true)]
    pub info_fd: Option<i32>,

    /// Write one JSON object to FD when the sandbox has ended (exit code or signal)
    ///
    /// When sbx is done, write one JSON object to FD and close it; also when sbx fails
    /// before the sandbox exists (a bad profile, a missing source). Exactly one of:
    ///
    /// {"exit_code": N}                    the command ran; N is the sandbox's status
    /// (the command's, 128+S for signal S) {"exit_code": 124, "timed_out": true}
    /// --timeout killed it {"error": {"step": STEP, "message": TEXT, "status":
    /// 125|126|127}}
    ///
    /// An error object means the command never ran: sbx failed (125), the command could
    /// not be executed (126) or was not found (127), with the step and message sbx
    /// printed. It is never given as an exit_code, so a command that itself exits 125,
    /// 126 or 127 is told apart.
    ///
    /// Before sbx acts on a record it checks the process behind it, through a pidfd:
    /// the recorded start time (a recycled pid is refused), your uid, PID 1 of a pid
    /// namespace of its own, and its command in exactly the recorded namespaces. A
    /// process that only claims a name is refused (firejail CVE-2022-31214).
    #[arg(long = "status-fd", value_name = "FD", allow_negative_numbers = true)]
    pub status_fd: Option<i32>,

    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell)
    ///
    /// Print the completion script for SHELL, generated from the same definitions as
    /// the options. Installed copies for bash, zsh and fish are in completions/ (the
    /// Debian package puts them where each shell looks); to load one by hand: source
    /// <(sbx --completions bash).
    #[arg(long = "completions", value_name = "SHELL", value_enum)]
    pub completions: Option<clap_complete::Shell>,

    /// Machine-readable output (JSON) where it applies
    ///
    /// Machine-readable output for --profiles and --print-profile.
    ///
    /// Mount options are applied after the profile's mounts, in the order given. In
    /// SRC:DST arguments a colon inside a path is written \: and a backslash \\.
    /// Sources are resolved (symlinks followed) on the host as the invoking user; a
    /// missing source is an error. Destinations must be absolute and may not contain
    /// ..; missing parent directories are created.
    #[arg(long = "json")]
    pub json: bool,

    /// Bind SRC read-only (recursively, nosuid, nodev) at DST (default: SRC)
    ///
    /// Bind SRC at DST (default: the same path) read-only, with nosuid and nodev, on
    /// every submount. Neither the command nor a namespace it creates can make it
    /// writable or unmount it to reveal what lies beneath.
    #[arg(long = "ro-bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub ro_bind: Vec<OsString>,

    /// Bind SRC read-write (nosuid, nodev) at DST (default: SRC)
    ///
    /// Bind SRC read-write, with nosuid and nodev.
    #[arg(long = "bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub bind: Vec<OsString>,

    /// Bind SRC read-write with device access (nosuid) at DST (default: SRC)
    ///
    /// Bind SRC read-write with device nodes usable (nosuid only).
    #[arg(long = "dev-bind", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub dev_bind: Vec<OsString>,

    /// Overlay SRC at DST (default: SRC): writes go to a 1 GiB tmpfs and are discarded when the sandbox ends
    ///
    /// Show SRC at DST (default: the same path) as an overlay: the command may write,
    /// but the writes go to a 1 GiB tmpfs and vanish when the sandbox ends; SRC itself
    /// is never changed. Files whose owner or group is not mapped into the sandbox
    /// cannot be modified (the kernel cannot copy them up).
    #[arg(long = "overlay-tmp", value_name = "SRC[:DST]", action = ArgAction::Append)]
    pub overlay_tmp: Vec<OsString>,

    /// Mount an empty tmpfs (1 GiB, mode 0755) at DST
    ///
    /// Mount an empty tmpfs of 1 GiB, mode 0755, nosuid and nodev, at DST.
    #[arg(long = "tmpfs", value_name = "DST", action = ArgAction::Append)]
    pub tmpfs: Vec<OsString>,

    /// Create the directory DST (and its parents) inside the sandbox
    ///
    /// Create the directory DST (mode 0755) and its parents.
    #[arg(long = "dir", value_name = "DST", action = ArgAction::Append)]
    pub dir: Vec<OsString>,

    /// Create the symlink LINK pointing to TARGET inside the sandbox
    ///
    /// Create the symbolic link LINK pointing to TARGET. An identical existing link is
    /// accepted; a different one is an error.
    #[arg(long = "symlink", value_name = "TARGET:LINK", action = ArgAction::Append)]
    pub symlink: Vec<OsString>,

    /// Network: none (own namespace, loopback only), host (share the host's), user (own namespace with outside access through pasta) or user:host-loopback; default: the profile's, else none
    ///
    /// none (default): an own network namespace with only lo, up; the host's loopback
    /// services are unreachable. host: the host's network namespace (Landlock still
    /// keeps host abstract sockets out of reach). user: an own network namespace
    /// connected to the outside by pasta(1) (package passt), started by sbx, attached
    /// before the command runs and stopped when the sandbox ends: outbound TCP and UDP,
    /// IPv4 and IPv6, and DNS through pasta's forwarder (the sandbox is 10.0.2.100 and
    /// fd00:5bc::100, the gateway and resolver 10.0.2.2; /etc/resolv.conf and
    /// /etc/hosts are written for it). The host's own loopback services are not
    /// reachable. user:host-loopback: as user, and the host's loopback is reachable
    /// inside at host.sbx.internal (10.0.2.2 and fd00:5bc::1; every port of it, as
    /// pasta cannot filter them). Rootless sandboxes cannot use veth pairs or bridges
    /// (those need CAP_NET_ADMIN on the host); pasta carries the traffic through the
    /// user's own sockets instead. user needs /usr/bin/pasta and a /dev/net/tun the
    /// user can open; sbx says so otherwise. Pasta dying while the sandbox runs is
    /// reported on stderr.
    #[arg(long = "net", value_name = "MODE", value_enum)]
    pub net: Option<NetArg>,

    /// With --net user: forward [ADDR/]HOSTPORT on the host (ADDR default 127.0.0.1) to SANDBOXPORT inside, tcp unless /udp
    ///
    /// With --net user: forward HOSTPORT on the host address ADDR (default 127.0.0.1)
    /// to SANDBOXPORT inside (repeatable). Nothing is forwarded unless published. A
    /// host port already in use (TCP) stops the launch with exit 125 naming it; this
    /// pasta does not detect a UDP port in use, and replies to UDP clients on the
    /// host's loopback are lost.
    #[arg(long = "publish", value_name = "[ADDR/]HOSTPORT:SANDBOXPORT[/tcp|/udp]", action = ArgAction::Append)]
    pub publish: Vec<String>,

    /// With --net user: the resolver pasta forwards the sandbox's DNS queries to (default: the host's first nameserver)
    ///
    /// With --net user: the resolver pasta forwards the sandbox's DNS queries to
    /// (repeatable; default: the host's first nameserver).
    #[arg(long = "dns", value_name = "ADDR", action = ArgAction::Append)]
    pub dns: Vec<String>,

    /// User id inside the sandbox (default: your own)
    ///
    /// The user id the command runs as inside (default: the invoking user's). --uid 0
    /// --gid 0 makes it root inside; root there holds no capabilities either. With
    /// subordinate ids, the id must lie outside the subordinate ranges, which are
    /// mapped to themselves.
    #[arg(long = "uid", value_name = "UID", allow_negative_numbers = true)]
    pub uid: Option<u32>,

    /// Group id inside the sandbox (default: your own)
    ///
    /// The group id inside (default: the invoking user's).
    #[arg(long = "gid", value_name = "GID", allow_negative_numbers = true)]
    pub gid: Option<u32>,

    /// Hostname inside the sandbox (default: sbx)
    ///
    /// The hostname inside (default sbx).
    #[arg(long = "hostname", value_name = "NAME", allow_hyphen_values = true)]
    pub hostname: Option<OsString>,

    /// Working directory inside the sandbox (default: the current one if it exists inside, else $HOME, else /)
    ///
    /// The working directory inside; it must exist there. Without it: the invoking
    /// directory if it exists inside, else $HOME, else /.
    #[arg(long = "cwd", value_name = "DIR", allow_hyphen_values = true)]
    pub cwd: Option<OsString>,

    /// Set an environment variable for the command
    ///
    /// Set a variable in the command's environment.
    #[arg(long = "setenv", value_name = "KEY=VALUE", action = ArgAction::Append, allow_hyphen_values = true)]
    pub setenv: Vec<OsString>,

    /// Remove an environment variable
    ///
    /// Remove a variable. With --setenv, applied in the order given.
    #[arg(long = "unsetenv", value_name = "KEY", action = ArgAction::Append, allow_hyphen_values = true)]
    pub unsetenv: Vec<OsString>,

    /// Pass a variable of sbx's environment through (the default allow-list is PATH HOME USER LOGNAME TERM LANG LC_* TZ)
    ///
    /// Pass a variable of sbx's own environment through. By default only PATH, HOME,
    /// USER, LOGNAME, TERM, LANG, LC_* and TZ pass, so tokens and socket addresses
    /// (such as SSH_AUTH_SOCK or DBUS_SESSION_BUS_ADDRESS) do not leak in. PWD is set
    /// to the working directory.
    #[arg(long = "keep-env", value_name = "KEY", action = ArgAction::Append, allow_hyphen_values = true)]
    pub keep_env: Vec<OsString>,

    /// Grant the ssh-agent of SSH_AUTH_SOCK (its socket and the variable): the sandbox can use every key loaded in the agent while it runs
    ///
    /// Grant the ssh-agent of SSH_AUTH_SOCK: its socket, bound at its own path, and the
    /// variable. Off by default: while the sandbox runs it can use every key loaded in
    /// the agent (sign in to any host the keys open), though it never sees the keys
    /// themselves; sbx says so when it starts. Exit 125 if SSH_AUTH_SOCK is unset or
    /// not a socket.
    #[arg(long = "ssh-agent")]
    pub ssh_agent: bool,

    /// How ids are mapped, over the profile's `ids`: auto (subordinate ids when usable, else your own id alone), subordinate (required), single
    ///
    /// How ids are mapped, over the profile's ids: auto (the subordinate ranges when
    /// they can be used, else the user's own id alone, said once), subordinate
    /// (required: exit 125 naming the cause when they cannot be used), or single (the
    /// user's own id alone).
    #[arg(long = "ids", value_name = "MODE")]
    pub ids: Option<IdsArg>,

    /// Kill the whole sandbox after SECS seconds (fractions allowed); sbx then exits 124
    ///
    /// Kill the whole sandbox DURATION after it has started; sbx then exits 124, as
    /// timeout(1) does. DURATION is written as for timeout(1): a number of seconds,
    /// fractions allowed, or with a suffix s, m, h or d (30, 1.5, 30s, 5m, 2h, 1d); at
    /// most one year.
    #[arg(long = "timeout", value_name = "DURATION", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<f64>,

    /// Set a resource limit over the profile's [limits]: nofile, nproc (the sandbox's own processes), fsize, as, core, cpu (seconds), stack, memlock, or memory, cpus, pids (cgroup v2); VALUE `unlimited` lifts the profile's
    ///
    /// Set a limit over the profile's [limits] (repeatable; the last one given wins).
    /// The rlimits, each soft and hard for the command and everything it starts: nofile
    /// (open files), nproc (processes and threads of the sandbox: see LIMITS), fsize
    /// (largest file written), as (address space), core (core file size), cpu (CPU
    /// seconds), stack and memlock; sizes take K, M, G or T. A value above your own
    /// hard limit is refused (a sandbox cannot raise it); unlimited lifts the profile's
    /// limit up to your own. The cgroup ceilings memory, cpus and pids are the options
    /// below.
    #[arg(long = "limit", value_name = "KEY=VALUE", action = ArgAction::Append)]
    pub limit: Vec<String>,

    /// Memory ceiling for the whole sandbox (cgroup v2 memory.max, no swap), e.g. 2G; needs a delegated cgroup (sbx --doctor)
    ///
    /// A memory ceiling for the whole sandbox: cgroup v2 memory.max (and
    /// memory.swap.max 0, where swap is accounted), so the sandbox's processes, its
    /// tmpfs pages, memfds and page cache together stay under it; past it the kernel's
    /// OOM killer kills inside the sandbox only. Needs a delegated cgroup (LIMITS);
    /// without one, exit 125 saying why.
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPU time for the whole sandbox, in CPUs (cgroup v2 cpu.max; 0.5 = half of one CPU); needs a delegated cgroup
    ///
    /// CPU time for the whole sandbox, in CPUs (fractions allowed: 0.5 is half of one
    /// CPU): cgroup v2 cpu.max with a 100 ms period. Needs a delegated cgroup.
    #[arg(long = "cpus", value_name = "N")]
    pub cpus: Option<String>,

    /// Process (thread) ceiling for the whole sandbox (cgroup v2 pids.max); needs a delegated cgroup. Without one, --limit nproc=N
    ///
    /// A ceiling on the sandbox's tasks (processes and threads): cgroup v2 pids.max.
    /// Needs a delegated cgroup; without one, --limit nproc=N gives a per-sandbox
    /// ceiling everywhere.
    #[arg(long = "pids", value_name = "N")]
    pub pids: Option<String>,

    /// Keep a capability (e.g. NET_RAW); it only acts inside the sandbox's user namespace
    ///
    /// Keep one capability for the command (names as in capabilities(7), with or
    /// without the CAP_ prefix). It is valid only in the sandbox's user namespace, over
    /// what that namespace owns, and is announced on stderr. CAP_SYS_ADMIN is refused:
    /// it would let the command remount read-only binds writable and unmount masks.
    #[arg(long = "cap-add", value_name = "CAP", action = ArgAction::Append)]
    pub cap_add: Vec<String>,

    /// Make a hardening layer mandatory: landlock (all of it, or exit 125), seccomp (a profile turning it off is an error) or cgroup (a profile's best-effort cgroup limits are required)
    ///
    /// Make a hardening layer mandatory (repeatable). landlock turns any part of the
    /// Landlock policy this kernel cannot enforce (filesystem rights, TCP port rules,
    /// scopes) into exit 125 instead of a warning, and refuses a profile with landlock
    /// = \(dqoff\(dq. seccomp refuses a profile with seccomp = \(dqoff\(dq; a seccomp
    /// filter that cannot be installed always stops the launch. cgroup turns a
    /// profile's best-effort cgroup ceilings (cgroup = \(dqbest-effort\(dq in [limits],
    /// as in untrusted) into exit 125 where they cannot be set.
    #[arg(long = "require", value_name = "LAYER", value_enum, action = ArgAction::Append)]
    pub require: Vec<Layer>,

    /// What the sandbox may do to version-control metadata (.git, .hg) in its writable directories: read-only, commit (git commit works; what git executes stays read-only; dev's mode), writable; the profile's `vcs`, else read-only
    ///
    /// What the sandbox may do to the version-control metadata that the host's tools
    /// execute, inside its writable directories (the profile's vcs, else read-only).
    ///
    /// read-only: A repository's .git directory is bound read-only over itself (config,
    /// hooks, info, modules, worktrees, and the files git would honour if created
    /// there, such as commondir), a .git pointer file (worktree or submodule) is
    /// read-only and its directory a mount point that cannot be renamed away, every
    /// submodule and linked worktree the git directory records is protected the same
    /// way, and Mercurial's .hg is read-only: a sandbox cannot plant a hook or a
    /// core.fsmonitor that the user's next plain git status would run on the host.
    /// Files in the work tree stay writable.
    ///
    /// commit: As read-only, except that a repository's own .git directory is staged, so
    /// that git add, git commit, git branch and git stash work (the dev profile's mode): its
    /// top level is a tmpfs holding copies of index, HEAD, ORIG_HEAD, COMMIT_EDITMSG,
    /// packed-refs, FETCH_HEAD and the loose refs; reflogs start empty (the stash's is
    /// copied); the host's objects are read-only and new objects go to the tmpfs (git's
    /// automatic gc and maintenance are off inside); everything else is read-only.
    /// Nothing of the host's .git is writable during the run. After it, when anything
    /// changed, the host's own git (found on PATH; without one, .git stays read-only)
    /// decides what lands, within 2 minutes in all: the loose objects that hash to
    /// their names are copied to a private directory of the repository, git fetch takes
    /// those the moved refs and the new index need with transfer.fsckObjects (each
    /// object parsed as git parses it, every tree and .gitmodules checked by fsck, the
    /// history complete; a refused fetch leaves no pack), then git update-ref moves
    /// each ref from its old value (a ref the host moved meanwhile stays the host's),
    /// the moves listed on stderr. Never brought back: refs/replace and refs/notes
    /// (each changes what git log shows for commits it does not touch), a branch a
    /// linked worktree has checked out, the deletion of the branch the host's HEAD is
    /// on, more than 1000 moves. The index is written back when it is one git itself
    /// would write (in order, no path both a file and a directory, modes of files,
    /// symlinks and submodules only) and every new entry names a blob in the
    /// repository, rewritten so that no entry the sandbox changed keeps the stat data,
    /// assume-valid or skip-worktree bits that would hide an edit from git status, and
    /// refused if it names a path git must not check out (.git, ..) or a new submodule;
    /// HEAD, only on a branch (refs/heads/), is set by git symbolic-ref or update-ref;
    /// each only if the host's copy did not change meanwhile. Objects nothing names, packs, the commit-graph, reflogs
    /// (the host's git writes its own, with the sandbox's messages), ORIG_HEAD,
    /// FETCH_HEAD and any other name the sandbox added (commondir, config.worktree,
    /// rebase-merge with its exec lines, MERGE_HEAD) are discarded, the last named:
    /// finish or abort a rebase or a merge inside. Linked worktrees, submodules, a
    /// repository with more than 16384 loose refs and SHA-256 repositories stay
    /// read-only.
    ///
    /// What it still allows, by design: the sandbox may move any ref (branches, tags,
    /// remote-tracking refs), so look at the listed moves before you push; what a commit
    /// holds is the sandbox's work, to review like any other change.
    ///
    /// writable: Written like any other file: the sandbox can plant hooks and config
    /// that the host's git will run.
    #[arg(long = "vcs", value_name = "MODE", value_enum)]
    pub vcs: Option<crate::profile::schema::VcsMode>,

    /// Same as --vcs writable: the sandbox may write hooks and config the host's git will run
    ///
    /// Same as --vcs writable.
    #[arg(long = "vcs-writable", conflicts_with = "vcs")]
    pub vcs_writable: bool,

    /// Print the resolved plan as JSON and run nothing
    ///
    /// Print the resolved plan (namespaces, id maps, mount operations with the option
    /// each came from, environment, the seccomp policy, the Landlock rules and a
    /// summary of what each layer enforces) as JSON and run nothing.
    #[arg(long = "dry-run", conflicts_with = "action")]
    pub dry_run: bool,

    /// Trace each setup step on stderr
    ///
    /// Trace each setup step on stderr, with the microseconds since sbx started and the
    /// process it ran in, after one line per hardening layer saying what it enforces.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Say nothing but errors (silences notices such as the single-id map)
    ///
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// The command and its arguments
    // No `allow_hyphen_values`: a word starting with `-` before the command is an
    // option, and an unknown one is an error with the nearest option suggested
    // (`--porfile`); after the command's first word everything is the command's.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        required_unless_present_any = ["profiles", "print_profile", "check_profile", "list", "enter", "inspect", "kill", "doctor", "completions"],
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
        (cli.completions.is_some(), "--completions"),
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

/// The completion script for `shell`, as `sbx --completions SHELL` prints it.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sbx", &mut out);
    out
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

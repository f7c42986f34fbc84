//! The launcher's role (sbx, outside the sandbox): clone PID 1 into the new
//! namespaces, run the id-map helpers, start pasta, record the sandbox, forward
//! signals and wait (docs/ARCHITECTURE.md).

use super::*;

/// Run the plan; returns the exit status for sbx.
/// Launch the plan and wait for it; returns the sandbox's status. `staged` receives,
/// in the plan's order, a descriptor of each git directory staged for `--vcs commit`
/// (crate::vcs_stage reads them after the run).
pub fn run(plan: &Plan, staged: &mut Vec<OwnedFd>) -> Result<i32> {
    // The sandbox dies with sbx's caller too (sbx(1), SIGNALS): PDEATHSIG on the launcher,
    // then the parent re-checked, since it may have died before the prctl.
    let caller = sys::getppid();
    sys::die_with_parent().map_err(|e| e.at("launch"))?;
    if sys::getppid() != caller {
        return Err(Error::new(
            "launch",
            "the caller exited before the sandbox started",
        ));
    }
    for (opt, fd) in [("--info-fd", plan.info_fd), ("--status-fd", plan.status_fd)] {
        if fd.is_some_and(|fd| fd < 3 || !sys::fd_is_open(fd)) {
            return Err(Error::new(
                opt,
                format!("{} is not an open descriptor above 2", fd.unwrap_or(-1)),
            ));
        }
    }
    if let Some(name) = &plan.name {
        if plan
            .records
            .as_deref()
            .is_some_and(|d| record::find(d, sys::getuid(), name).is_ok())
        {
            return Err(Error::new(
                format!("--name {name}"),
                "a sandbox of that name is running (see sbx --list)",
            ));
        }
    }
    // Bind sources the profile makes on first use (a browser's profile directory).
    for dir in &plan.create {
        sys::mkdir_p_nofollow(dir, 0o700).map_err(|e| e.at(format!("make {}", dir.display())))?;
        trace::step("launcher", || format!("made {}", dir.display()));
    }
    let prep = Prepared::new(plan);
    // The D-Bus proxy's socket must exist before PID 1 takes the bind sources.
    let proxy = match &plan.dbus {
        Some(d) => Some(crate::dbus_proxy::start(d, sys::getuid())?),
        None => None,
    };
    // The cgroup leaf (--memory, --cpus, --pids) exists before PID 1, which is born
    // in it, and goes once PID 1 has been reaped (crate::cgroup).
    let leaf = match &plan.cgroup {
        Some(c) => match crate::cgroup::create(c, sys::getuid()) {
            Ok(l) => Some(l),
            Err(e) => {
                if let Some(p) = proxy {
                    p.stop();
                }
                return Err(e);
            }
        },
        None => None,
    };
    let code = launch_with(plan, &prep, leaf.as_ref(), staged);
    if let Some(l) = leaf {
        l.remove();
    }
    if let Some(p) = proxy {
        p.stop();
    }
    // Not freed: sbx exits next (see crate::main).
    std::mem::forget(prep);
    code
}

pub(super) fn launch_with(
    plan: &Plan,
    prep: &Prepared,
    leaf: Option<&crate::cgroup::Leaf>,
    staged: &mut Vec<OwnedFd>,
) -> Result<i32> {
    let me = sys::pidfd_open(sys::getpid()).map_err(|e| e.at("launch"))?;
    // With --status-fd, the sandbox's processes report a failure on this pipe.
    let report = match plan.status_fd {
        Some(_) => Some(crate::status::open_report()?),
        None => None,
    };
    let (init_ours, init_theirs) = msg::pair()?;
    // For pasta, the command's process passes the network namespace it makes (and the
    // user namespace) to the launcher over `netpass`.
    let netpass = match (plan.namespaces.contains(&Namespace::Net), &plan.net.pasta) {
        (true, Some(_)) => Some(msg::pair()?),
        _ => None,
    };
    // Blocked before the fork so no signal is lost between fork and the wait loop;
    // the children inherit the mask and the command clears it before execve.
    let set = handled();
    sys::sigmask(libc::SIG_BLOCK, &set);
    // The user namespace is created first and owns every namespace made after it,
    // in this clone (clone(2): CLONE_NEWUSER is acted on first) or later by PID 1 and
    // the command's process: the sandbox holds capabilities only over its own. Only
    // the pid namespace comes with it (PID 1 must be born in it); PID 1 unshares the
    // rest itself, while the id helpers run (README, Benchmark: they are the
    // longest step), and the launcher starts those helpers the moment clone returns, with no
    // process in between to wake.
    let first = plan
        .namespaces
        .iter()
        .filter(|ns| ns.maker() == Maker::Clone)
        .fold(0, |f, ns| f | ns.clone_flag());
    trace::step("launcher", || {
        format!(
            "clone PID 1 into new namespaces: {}",
            crate::namespace::flag_names(first)
        )
    });
    let pid1 = sys::clone_fork_into(first, leaf.map(|l| l.fd.as_fd()))
        .map_err(|e| clone_error(plan, leaf, e))?;
    if pid1 == 0 {
        drop(init_ours);
        run_init(
            plan,
            prep,
            me,
            init_theirs,
            netpass.map(|(_, theirs)| theirs),
        );
    }
    drop((init_theirs, me));
    crate::status::launched();
    let maps = userns::start_maps(&plan.ids, pid1);
    if maps.is_some() {
        init_ours.send(ToChild::HelpersStarted);
    }
    let netpass = netpass.map(|(ours, _)| ours);
    let code = supervise(
        plan,
        pid1,
        maps,
        (&init_ours, netpass.as_ref()),
        &set,
        staged,
    );
    if let (Some(fd), Ok(c), Some(r)) = (plan.status_fd, &code, &report) {
        let failure = crate::status::read_failure(r);
        crate::status::write(fd, &crate::status::object(*c, failure));
    }
    code
}

/// Why the clone of PID 1 failed, with the likely cause and its fix.
pub(super) fn clone_error(
    plan: &Plan,
    leaf: Option<&crate::cgroup::Leaf>,
    e: sys::SysError,
) -> Error {
    let into = leaf.map(|l| {
        format!(
            " (PID 1 born in cgroup {}: the move needs write access to cgroup.procs of \
             the common parent, and Linux 5.7 for clone3)",
            l.dir.display()
        )
    });
    let hint = match e.errno {
        libc::EACCES | libc::ENOENT | libc::EBUSY | libc::ENOSYS | libc::EOPNOTSUPP
            if into.is_some() =>
        {
            into.as_deref().unwrap_or_default()
        }
        // Inside a sandbox (no_new_privs set), its seccomp policy is the likely cause:
        // sbx's own refuses namespaces unless a profile allows nesting.
        libc::EPERM if plan.no_new_privs => {
            " (sbx runs inside a sandbox whose policy refuses new namespaces: run the \
             outer one with --profile nested, or a profile including `nesting`)"
        }
        libc::EPERM | libc::ENOSPC | libc::EUSERS => {
            " (unprivileged user namespaces are disabled or exhausted here: check \
             user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns)"
        }
        _ => "",
    };
    Error::sys(
        "create user namespace",
        format!("{}{hint}", e.call),
        e.errno,
    )
}

/// Kill and reap PID 1: its death takes every process of the sandbox with it.
pub(super) fn abort(pid1: libc::pid_t) {
    sys::kill(pid1, libc::SIGKILL);
    let _ = sys::waitpid(pid1, 0);
}

pub(super) fn supervise(
    plan: &Plan,
    pid1: libc::pid_t,
    maps: Option<userns::PendingMaps>,
    (init, netpass): (&Channel, Option<&Channel>),
    set: &libc::sigset_t,
    staged: &mut Vec<OwnedFd>,
) -> Result<i32> {
    if let Some(maps) = maps {
        if let Some(code) = finish_maps(plan, pid1, maps, init)? {
            return Ok(code);
        }
    }
    let pasta = match (&plan.net.pasta, netpass) {
        (Some(p), Some(chan)) => match start_pasta(plan, p, chan, init) {
            Ok(Some(r)) => Some(r),
            // The sandbox failed before it had a network (and said why): its status.
            Ok(None) => {
                return sys::waitpid(pid1, 0)
                    .map(|r| r.map_or(EXIT_SETUP, |(_, s)| sys::exit_code(s)))
                    .map_err(|e| e.at("wait for PID 1"))
            }
            Err(e) => {
                abort(pid1);
                return Err(e);
            }
        },
        _ => None,
    };
    trace::step("launcher", || format!("PID 1 is host pid {pid1}; waiting"));
    let stop = |e: Error| {
        abort(pid1);
        if let Some(p) = &pasta {
            p.stop();
        }
        Err(e)
    };
    let (started, pid1_namespaces) = match await_start(plan, pid1, init, staged) {
        Ok(s) => s,
        Err(e) => return stop(e),
    };
    let mut recorded = match started {
        Some(command) => match record_sandbox(plan, pid1, &command, &pid1_namespaces) {
            Ok(path) => path.map(|p| (p, command)),
            Err(e) => return stop(e),
        },
        // PID 1 failed during setup (and said why): nothing to record.
        _ => None,
    };
    let code = wait_sandbox(plan, pid1, pasta.as_ref(), set, &mut recorded);
    if let Some(p) = &pasta {
        p.stop();
    }
    if let Some((path, _)) = &recorded {
        record::remove(path);
    }
    code
}

/// Let the id-map helpers finish. A helper that fails costs the subordinate ranges,
/// not the launch, unless they are required. Some: PID 1's own status (it failed
/// first, and said why).
pub(super) fn finish_maps(
    plan: &Plan,
    pid1: libc::pid_t,
    maps: userns::PendingMaps,
    init: &Channel,
) -> Result<Option<i32>> {
    trace::step("launcher", || {
        format!("write id maps ({:?})", plan.ids.mapping)
    });
    if let Err(e) = maps.finish() {
        // A PID 1 that failed on its own (and said why) explains the maps' failure;
        // otherwise it is killed, not told, so its exit cannot be taken for that.
        if let Ok(Some((_, s))) = sys::waitpid(pid1, libc::WNOHANG) {
            match sys::exit_code(s) {
                0 => {}
                code => return Ok(Some(code)),
            }
        }
        // A helper that fails (refused by the kernel, misconfigured, exiting with an
        // error) costs the subordinate ranges, not the launch, unless they are
        // required: the launcher, the namespace's owner, maps its own ids.
        let (uid, gid) = (sys::getuid(), sys::getgid());
        let fallback =
            (!plan.ids.required).then(|| userns::write_single_maps_for(pid1, uid, gid, &plan.ids));
        match fallback {
            Some(Ok(what)) => {
                if !plan.quiet {
                    eprintln!("sbx: {}: {what}", crate::text::escape(&e.to_string()));
                }
            }
            Some(Err(_)) => {
                abort(pid1);
                return Err(e);
            }
            // Required: the fix, with the cause.
            None => {
                abort(pid1);
                let mut e = e;
                e.detail.push_str(
                    "; check your ranges in /etc/subuid and /etc/subgid and that newuidmap \
                     and newgidmap are setuid root, or use --ids auto",
                );
                return Err(e);
            }
        }
    }
    init.send(ToChild::MapsWritten);
    trace::step("launcher", || "id maps written".into());
    Ok(None)
}

/// Wait until PID 1 has started the command (and so sits in every namespace it will
/// ever be in): the command's pidfd (None: PID 1 failed first, and the wait reports
/// it), each staged git directory's tmpfs into `staged`, and PID 1's namespaces for
/// `--info-fd`, read while it waits.
pub(super) fn await_start(
    plan: &Plan,
    pid1: libc::pid_t,
    init: &Channel,
    staged: &mut Vec<OwnedFd>,
) -> Result<(Option<OwnedFd>, std::collections::BTreeMap<String, u64>)> {
    let started = match init.expect(ToParent::Started) {
        Ok(()) => init.recv_fd(),
        Err(Unexpected::Gone) => None,
        Err(Unexpected::Other { expected, got }) => {
            return Err(Error::new(
                "launch",
                format!("PID 1 broke the protocol: expected {expected}, got {got}"),
            ));
        }
    };
    if started.is_some() {
        for _ in &plan.git_staged {
            match init.recv_fd() {
                Some(fd) => staged.push(fd),
                None => break,
            }
        }
    }
    let namespaces = match (&started, plan.info_fd) {
        (Some(_), Some(_)) => {
            let ns = record::ns_inodes(&pid1.to_string());
            init.send(ToChild::NamespacesRead);
            ns
        }
        _ => Default::default(),
    };
    Ok((started, namespaces))
}

/// Write the sandbox's record (and `--info-fd`'s object); `command` is a pidfd of the
/// command's process, passed by PID 1. Returns the record's path, or None when the
/// command has already ended (there is nothing left to record).
pub(super) fn record_sandbox(
    plan: &Plan,
    pid1: libc::pid_t,
    command: &OwnedFd,
    pid1_namespaces: &std::collections::BTreeMap<String, u64>,
) -> Result<Option<std::path::PathBuf>> {
    let (me, uid) = (sys::getpid(), sys::getuid());
    // A command that has already exited (a zombie still shows its pid) has no
    // namespaces left to read: nothing to record.
    let name = sandbox_name(plan, me);
    // --info-fd's object is written whatever becomes of the record (bubblewrap's
    // contract: the child's pid and its namespaces, once set up).
    let info = || {
        if let Some(fd) = plan.info_fd {
            crate::status::write(
                fd,
                &serde_json::json!({
                    "name": name, "child-pid": pid1, "launcher-pid": me,
                    "namespaces": pid1_namespaces,
                }),
            );
        }
    };
    let Some(anchor) =
        sys::pidfd_pid(command.as_fd()).filter(|_| !sys::pidfd_exited(command.as_fd()))
    else {
        // The command has ended already: nothing to record.
        info();
        return Ok(None);
    };
    let rec = sandbox_record(plan, &name, (me, uid), pid1, anchor);
    // What was read from /proc/ANCHOR is the command's only if it has not exited (and
    // its pid been reused) since: its pidfd tells.
    if sys::pidfd_exited(command.as_fd()) {
        info();
        return Ok(None);
    }
    // A records directory that became unusable since the plan (another user took
    // /tmp/sbx-UID in between) costs the record, never the launch.
    let path = match plan.records.as_deref().map(|d| record::create(d, &rec)) {
        Some(Ok(path)) => {
            trace::step("launcher", || format!("recorded as {}", path.display()));
            Some(path)
        }
        Some(Err(e)) if e.kind == crate::error::Kind::NameTaken => return Err(e),
        Some(Err(e)) => {
            eprintln!("sbx: {e}: this sandbox is not recorded");
            None
        }
        None => None,
    };
    info();
    Ok(path)
}

/// The record of a sandbox whose command's process is `anchor` (running).
pub(super) fn sandbox_record(
    plan: &Plan,
    name: &str,
    (me, uid): (libc::pid_t, libc::uid_t),
    pid1: libc::pid_t,
    anchor: libc::pid_t,
) -> record::Record {
    let lossy = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    record::Record {
        version: 1,
        name: name.to_string(),
        uid,
        launcher: me,
        pid1,
        pid1_start: record::start_time(pid1).unwrap_or(0),
        anchor,
        anchor_start: record::start_time(anchor).unwrap_or(0),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        profile: plan.profile.clone(),
        command: plan.command.iter().map(|c| lossy(c)).collect(),
        net: serde_json::to_value(plan.net.mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        namespaces: record::ns_inodes_settled(anchor),
        env: plan.env.iter().map(|(k, v)| (lossy(k), lossy(v))).collect(),
        caps: plan.caps.clone(),
        rlimits: plan.rlimits.clone(),
        cgroup: plan.cgroup.clone(),
        seccomp: plan.seccomp.clone(),
        landlock: plan.landlock.clone(),
    }
}

/// `--name`, or PROFILE-PID.
pub(super) fn sandbox_name(plan: &Plan, me: libc::pid_t) -> String {
    plan.name.clone().unwrap_or_else(|| {
        let stem: String = std::path::Path::new(&plan.profile)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        format!("{}-{me}", stem.trim_start_matches('.'))
    })
}

/// `--net user`: start pasta on the namespaces the command's process passes, then let
/// PID 1 start the command. None: they never came (the sandbox failed first).
pub(super) fn start_pasta(
    plan: &Plan,
    p: &crate::plan::network::Pasta,
    chan: &Channel,
    init: &Channel,
) -> Result<Option<pasta::Running>> {
    let (Some(netns), Some(userns)) = (chan.recv_fd(), chan.recv_fd()) else {
        return Ok(None);
    };
    trace::step("launcher", || format!("start {}", pasta::describe(p)));
    let running = pasta::start(p, &plan.net.publish, &netns, &userns)?;
    trace::step("launcher", || "pasta has configured the network".into());
    init.send(ToChild::NetReady);
    Ok(Some(running))
}

/// Forward signals and wait for PID 1; reports pasta's death. The record goes as soon
/// as the command has ended, while the kernel is still
/// tearing the sandbox down: the sandbox is over then (PID 1 only reaps and exits), and
/// `--list` must not show it.
pub(super) fn wait_sandbox(
    plan: &Plan,
    pid1: libc::pid_t,
    pasta: Option<&pasta::Running>,
    set: &libc::sigset_t,
    recorded: &mut Option<(std::path::PathBuf, OwnedFd)>,
) -> Result<i32> {
    let mut pasta_running = pasta.is_some();
    let deadline = plan
        .timeout_ms
        .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
    let signals = sys::signalfd(set).map_err(|e| e.at("wait for the sandbox"))?;
    loop {
        let ready = {
            let mut fds = vec![signals.as_fd()];
            fds.extend(recorded.as_ref().map(|(_, command)| command.as_fd()));
            sys::poll_readable(&fds, deadline).map_err(|e| e.at("wait for the sandbox"))?
        };
        if ready.get(1) == Some(&true) {
            if let Some((path, _)) = recorded.take() {
                record::remove(&path);
            }
        }
        let next = match ready[0] {
            true => sys::read_signal(signals.as_fd()),
            false => None,
        };
        let timed_out =
            !ready.contains(&true) && deadline.is_some_and(|d| std::time::Instant::now() >= d);
        if timed_out {
            eprintln!("sbx: --timeout reached: the sandbox is killed");
            crate::status::set_timed_out();
            abort(pid1);
            return Ok(crate::error::EXIT_TIMEOUT);
        }
        let Some((sig, code)) = next else {
            continue;
        };
        if sig == libc::SIGCHLD {
            if let (true, Some(p)) = (pasta_running, pasta) {
                if let Some(status) = p.exited() {
                    pasta_running = false;
                    eprintln!(
                        "sbx: warning: pasta, which carries the sandbox's network, exited (status {}): the sandbox has no outside network now{}",
                        sys::exit_code(status),
                        match p.stderr_text() {
                            t if t.is_empty() => String::new(),
                            t => format!(": {t}"),
                        }
                    );
                }
            }
            if let Some((_, status)) =
                sys::waitpid(pid1, libc::WNOHANG).map_err(|e| e.at("wait for PID 1"))?
            {
                return Ok(sys::exit_code(status));
            }
        } else if sent_by_process(code) {
            sys::kill(pid1, sig);
        }
    }
}

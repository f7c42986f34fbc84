//! PID 1's role: the rest of the namespaces, the new root and the pivot, then
//! reaping and forwarding signals until the command ends.

use super::*;

/// Die with the launcher: PDEATHSIG fires if it dies from now on, and the pidfd says
/// whether it already has (the race bwrap leaves open, bubblewrap#633).
pub(super) fn die_with_launcher(launcher: &OwnedFd) {
    if sys::die_with_parent().is_err() || sys::pidfd_exited(launcher.as_fd()) {
        exit_now(EXIT_SETUP);
    }
}

pub(super) fn run_init(
    plan: &Plan,
    prep: &Prepared,
    launcher: OwnedFd,
    chan: Channel,
    netpass: Option<Channel>,
) -> ! {
    die_with_launcher(&launcher);
    drop(launcher);
    trace::step("init", || "PID 1 started".into());
    // With subordinate ids, the setuid helpers are the longest step of the launch and
    // the launcher can only start them once we exist: we start on its CPU, ahead of
    // it, so we wait until they run rather than hold it off.
    if !maps_written_by_init(plan) {
        if let Err(why) = chan.expect(ToChild::HelpersStarted) {
            why.exit("PID 1");
        }
    }
    if maps_written_by_init(plan) {
        if let Err(e) = userns::write_own_single_map(&plan.ids) {
            fail(&e);
        }
        trace::step("init", || "single-id map written".into());
    }
    let rest = plan
        .namespaces
        .iter()
        .filter(|ns| ns.maker() == Maker::Pid1)
        .fold(0, |f, ns| f | ns.clone_flag());
    if let Err(e) = sys::unshare(rest) {
        fail(&e.at("create namespaces"));
    }
    if let Err(e) = sys::sethostname(plan.hostname.as_encoded_bytes()) {
        fail(&e.at("--hostname"));
    }
    trace::step("init", || {
        format!("namespaces created: {}", crate::namespace::flag_names(rest))
    });
    // Mount points get exactly the modes the plan gives; the command restores the
    // user's umask.
    let umask = sys::umask(0);
    let command = match start_command(plan, prep, umask, netpass) {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    // Every mount is made detached while the id maps are still being written...
    let detached = match mount::prepare(plan) {
        Ok(d) => d,
        Err(e) => fail(&e),
    };
    trace::step("init", || "mounts prepared".into());
    // ...but nothing can be created in the new root until the ids are mapped: the
    // kernel refuses inodes owned by an unmapped id (EOVERFLOW).
    if !maps_written_by_init(plan) {
        if let Err(why) = chan.expect(ToChild::MapsWritten) {
            why.exit("PID 1");
        }
    }
    trace::step("init", || "id maps are written".into());
    let pid = command.pid;
    if let Err(e) = setup(plan, &chan, command, detached) {
        fail(&e);
    }
    exit_now(reap(pid))
}

/// Build the root, pivot into it and detach the old one; let the command's process
/// finish preparing; join its network namespace; report the start and open the gate.
pub(super) fn setup(
    plan: &Plan,
    launcher: &Channel,
    command: Command,
    detached: mount::Detached,
) -> Result<()> {
    let root = mount::build_root(plan, detached)?;
    trace::step("init", || "root built".into());
    mount::pivot(&root)?;
    drop(root);
    mount::detach_old_root()?;
    trace::step("init", || "pivot_root done, old root detached".into());
    // The command's process may walk paths now: it enters its cwd and applies Landlock
    // and seccomp while PID 1 finishes.
    Gate::RootReady.open(command.gate.as_fd());
    if let Some(rx) = &command.net {
        // EOF: the command's process failed to make it, said why and ended: the gate
        // closes (it never execs) and its status becomes the sandbox's.
        let Some(ns) = rx.recv_fd() else {
            return Ok(());
        };
        sys::setns(ns.as_fd(), Namespace::Net.clone_flag())
            .map_err(|e| e.at("join network namespace"))?;
        trace::step("init", || "joined the network namespace".into());
    }
    // --net user: the command never sees a half-configured network.
    if plan.net.pasta.is_some() {
        if let Err(why) = launcher.expect(ToChild::NetReady) {
            why.exit("PID 1");
        }
    }
    // The launcher records the command by a pidfd: it names this very process even
    // once it has exited (pidfd_open(2)), where a pid read from /proc could be
    // another's by then.
    let pidfd = sys::pidfd_open(command.pid).map_err(|e| e.at("start the command"))?;
    // Each git directory staged for `--vcs commit`: its tmpfs, opened now (the
    // command has not run anything of its own yet), read by the launcher after the
    // run, when this namespace is gone (vcs_stage.rs).
    let staged = plan
        .git_staged
        .iter()
        .map(|s| {
            sys::open_no_symlinks(
                &sys::cstr(s.dst.as_os_str()),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
            .map_err(|e| e.at("--vcs commit: open the staged git directory"))
        })
        .collect::<Result<Vec<_>>>()?;
    launcher.send(ToParent::Started);
    launcher.send_fd(pidfd.as_fd())?;
    for fd in &staged {
        launcher.send_fd(fd.as_fd())?;
    }
    drop(staged);
    // --info-fd names PID 1's namespaces, which the launcher reads while PID 1 waits
    // here: once PID 1 is not dumpable the launcher may not (PID 1's mm belongs to the
    // host's user namespace, where the launcher lacks CAP_SYS_PTRACE: ptrace(2),
    // "Ptrace access mode checking"), and the command may have ended before the
    // launcher looks at its own. Without the option, no round trip.
    if plan.info_fd.is_some() {
        if let Err(why) = launcher.expect(ToChild::NamespacesRead) {
            why.exit("PID 1");
        }
    }
    drop(pidfd);
    // The gate opens once PID 1 has shed its capabilities and become non-dumpable:
    // the command must never see, through /proc/1, a PID 1 that still holds them.
    shed_privileges(command)
}

/// PID 1 keeps nothing the command could use against it once the command runs: no
/// descriptor but 0, 1, 2 (the caller's), no capability, and it is not dumpable, so
/// even a command given CAP_SYS_PTRACE cannot reach its memory or its /proc/1/fd
/// (ptrace(2), "Ptrace access mode checking"). Only then may the command's process
/// exec; if any of it fails, the gate closes unopened and the command never runs.
pub(super) fn shed_privileges(command: Command) -> Result<()> {
    let step = "PID 1: drop privileges";
    let Command { gate, net, .. } = command;
    drop(net);
    let gate = sys::keep_only_fds(Some(gate)).map_err(|e| e.at(step))?;
    // It never execs again: emptying the permitted set is enough (no bounding-set walk).
    sys::capset(0, 0, 0).map_err(|e| e.at(step))?;
    sys::prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE").map_err(|e| e.at(step))?;
    if let Some(gate) = &gate {
        Gate::Exec.open(gate.as_fd());
    }
    Ok(())
}

/// PID 1's loop: reap every child (orphans are re-parented to us), pass the forwarded
/// signals to the command, and return its status once it has exited. Returning ends
/// PID 1 and with it, by the kernel's hand, every process left in the namespace.
pub(super) fn reap(command: libc::pid_t) -> i32 {
    let set = handled();
    loop {
        // An error here cannot end (an invalid set): PID 1 stops, and the
        // kernel with it every process in the namespace.
        let Ok((sig, code)) = sys::sigwait(&set) else {
            return crate::error::EXIT_SETUP;
        };
        if sig == libc::SIGCHLD {
            while let Ok(Some((pid, status))) = sys::waitpid(-1, libc::WNOHANG) {
                if pid == command {
                    return sys::exit_code(status);
                }
            }
        } else if sent_by_process(code) {
            sys::kill(command, sig);
        }
    }
}

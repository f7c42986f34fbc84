//! The command's process until `exec::exec_command` takes over: started early by
//! PID 1, it makes the network namespace beside PID 1's mount work.

use super::*;

/// The command's process, started before the root is built, and PID 1's ends of
/// what links them.
pub(super) struct Command {
    pub(super) pid: libc::pid_t,
    /// The command's process waits here before each step ([`msg::Gate`]).
    pub(super) gate: OwnedFd,
    /// The network namespace the command's process made.
    pub(super) net: Option<Channel>,
}

/// Start the command's process now, so that what it does on its own runs beside
/// PID 1's mount work: it makes the network namespace (the one namespace that costs,
/// ~0.4 ms here), brings `lo` up and passes the namespace to PID 1 (and with
/// `--net user`, with the user namespace, to the launcher for pasta), then drops its
/// capabilities and locks itself down as far as it can before the root exists.
pub(super) fn start_command(
    plan: &Plan,
    prep: &Prepared,
    umask: libc::mode_t,
    netpass: Option<Channel>,
) -> Result<Command> {
    let step = "start the command";
    let (gate_rx, gate_tx) = sys::pipe().map_err(|e| e.at(step))?;
    // The command's process names its namespaces through the host's /proc, opened
    // here: by the time it gets to it, PID 1 may have pivoted into a root whose /proc
    // is not mounted yet.
    let net = if plan.namespaces.contains(&Namespace::Net) {
        let proc = sys::open(c"/proc", libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| e.at("create network namespace"))?;
        Some((msg::pair()?, proc))
    } else {
        None
    };
    let pid = sys::clone_fork(0).map_err(|e| e.at(step))?;
    if pid == 0 {
        drop(gate_tx);
        let net = net.map(|((_, ours), proc)| (ours, proc));
        run_command(plan, prep, umask, gate_rx, net, netpass);
    }
    drop(gate_rx);
    drop(netpass);
    let net = net.map(|((init_end, _), _)| init_end);
    let cmd = Command {
        pid,
        gate: gate_tx,
        net,
    };
    // A new process is often queued on its parent's CPU while another CPU idles (fork
    // placement goes by load averages), and then waits there until we sleep: seen on 2
    // vCPUs, the network namespace made only after the whole root (+0.5 ms). So it
    // starts by waiting for this byte: if it is queued behind us, the yield lets it
    // reach that wait, and the wakeup then puts it on an idle CPU (wakeups look for
    // one, sched(7)).
    sys::sched_yield();
    Gate::Go.open(cmd.gate.as_fd());
    Ok(cmd)
}

/// The command's process, until [`exec::exec_command`] takes over.
pub(super) fn run_command(
    plan: &Plan,
    prep: &Prepared,
    umask: libc::mode_t,
    gate: OwnedFd,
    net: Option<(Channel, OwnedFd)>,
    netpass: Option<Channel>,
) -> ! {
    // PID 1's death ends its pid namespace and us with it; the parent-death signal
    // says so for this process too, whatever else changes.
    if sys::die_with_parent().is_err() {
        exit_now(EXIT_SETUP);
    }
    if let Err(why) = Gate::Go.pass(gate.as_fd()) {
        why.exit("the command's process");
    }
    if let Some((init, proc)) = &net {
        if let Err(e) = make_netns(init, proc, netpass.as_ref()) {
            fail(&e);
        }
        trace::step("command", || "network namespace created and passed".into());
    }
    drop((net, netpass));
    exec::exec_command(
        prep,
        exec::Start {
            dirs: &plan.cwd,
            required: plan.cwd_required,
            umask,
            gate: Some(gate),
        },
    )
}

/// Make the network namespace (owned by the sandbox's user namespace, which we are
/// in), bring `lo` up and pass the namespace to PID 1; for pasta, to the launcher too,
/// with the user namespace.
pub(super) fn make_netns(init: &Channel, proc: &OwnedFd, pasta: Option<&Channel>) -> Result<()> {
    let step = "create network namespace";
    sys::unshare(Namespace::Net.clone_flag()).map_err(|e| e.at(step))?;
    net::loopback_up()?;
    let ns = sys::openat(proc.as_fd(), c"self/ns/net", libc::O_RDONLY).map_err(|e| e.at(step))?;
    init.send_fd(ns.as_fd())?;
    if let Some(l) = pasta {
        let user =
            sys::openat(proc.as_fd(), c"self/ns/user", libc::O_RDONLY).map_err(|e| e.at(step))?;
        l.send_fd(ns.as_fd())?;
        l.send_fd(user.as_fd())?;
    }
    Ok(())
}

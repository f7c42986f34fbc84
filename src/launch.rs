//! The launch (README, "How a launch works"), one file per process role (launch/
//! launcher.rs, init.rs for PID 1, command.rs), in this order:
//!
//! ```text
//! sbx (launcher, outside)         PID 1 (init)                        command
//! ------------------------------  ----------------------------------  ------------------------------
//! clone(NEWUSER|NEWPID) --------> PDEATHSIG + pidfd re-check;
//! newuidmap ∥ newgidmap (subids)  single id: writes its own map
//!  --- HelpersStarted (subids) -> unshare(mnt|ipc|uts|cgroup),
//!                                 hostname, fork --- Gate::Go ------> unshare(net), lo up, pass it;
//!                                 take the sources                    keyring, drop caps
//!  --- MapsWritten (subids) ----> build root, pivot_root,
//!                                 detach old root -- Gate::RootReady> close fds, rlimits,
//!                                 setns(net)                          no_new_privs, cwd, Landlock
//!  <-- Started + pidfd ---------- shed privileges -- Gate::Exec ----> seccomp, execve
//! record, forward signals, wait   reap, forward signals
//! ```
//!
//! The messages (crate::msg) are typed: each side expects one message or gate step
//! at a time, and anything else (another message, an unknown byte) is an error
//! naming what was expected and what came; EOF means the other side failed and said
//! why. Which process makes each namespace is crate::namespace's table.
//!
//! The command's process walks no path until the old root is gone (see
//! mount::detach_old_root): it names its namespaces through a descriptor of the
//! host's /proc.
//!
//! PID 1 is the launcher's own child, so the launcher's wait returns only once PID 1
//! has exited, and PID 1's exit makes the kernel kill and reap everything left in the
//! pid namespace first: no process outlives `sbx`.

pub mod exec;
pub mod mount;
pub mod msg;
pub mod net;
pub mod status;
pub mod tty;
pub mod userns;

mod command;
mod init;
mod launcher;

use command::*;
use init::*;
pub use launcher::run;

use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Error, Result, EXIT_SETUP};
use crate::namespace::Maker;
use crate::plan::{Namespace, Plan};
use crate::{pasta, record, sys, trace};
use exec::Prepared;
use msg::{Channel, Gate, ToChild, ToParent, Unexpected};

/// Signals the launcher and PID 1 pass on to the command.
pub const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

pub(crate) fn handled() -> libc::sigset_t {
    let mut v = FORWARDED.to_vec();
    v.push(libc::SIGCHLD);
    sys::sigset(&v)
}

/// Once the sandbox is gone: the signals the launch held for forwarding act on sbx
/// again (^C stops what is left to do after the run, as for any program).
pub fn unblock_signals() {
    let set = handled();
    // Those that came while the sandbox ran were passed on already.
    sys::discard_pending(&set);
    sys::sigmask(libc::SIG_UNBLOCK, &set);
}

/// A signal sent by a process (kill, sigqueue, tgkill) rather than by the kernel.
/// Terminal signals (^C, ^\, resize) are sent by the kernel to the whole foreground
/// process group, which the command is in already: forwarding them would double them.
pub(crate) fn sent_by_process(si_code: libc::c_int) -> bool {
    si_code <= 0
}

/// Leave a forked process now, without unwinding or running destructors.
fn exit_now(code: i32) -> ! {
    sys::exit_now(code)
}

fn fail(e: &Error) -> ! {
    eprintln!("sbx: {e}");
    crate::status::report_failure(e);
    exit_now(e.code)
}

/// A single-id map is written by PID 1 itself, first thing (one process fewer to
/// wake on the way). Subordinate ranges need
/// the setuid helpers, which the launcher runs from outside.
fn maps_written_by_init(plan: &Plan) -> bool {
    plan.ids.mapping == userns::Mapping::Single
}

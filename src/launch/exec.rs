//! The command's own process: the last steps before execve, in this order (README
//! "How a launch works", docs/ARCHITECTURE.md): a session keyring of its own, every
//! capability dropped; past the gate's RootReady step, the inherited descriptors
//! closed, rlimits, no_new_privs, the cwd, Landlock; past its Exec step, seccomp;
//! then the PATH search with the shell's exit codes: 127 not found, 126 cannot
//! execute. The cwd comes after the capabilities go, so it is entered with the
//! user's own rights.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{Error, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND};
use crate::msg::Gate;
use crate::plan::{Plan, DEFAULT_PATH};
use crate::seccomp::Program;
use crate::{caps, landlock, seccomp, sys, trace};

/// Everything exec needs, converted before any fork so the late steps only make syscalls.
pub struct Prepared {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Candidate paths for argv[0]: itself if it has a `/`, else each PATH entry joined.
    pub candidates: Vec<CString>,
    pub caps: u64,
    /// (resource, name, value) for setrlimit.
    pub rlimits: Vec<(libc::__rlimit_resource_t, String, u64)>,
    pub filter: Program,
    pub landlock: landlock::Rules,
    /// Added to "command not found inside the sandbox" (see `Plan::not_found_hint`).
    pub not_found_hint: Option<String>,
    /// sbx runs inside another sandbox (no_new_privs was set), and `-q`.
    pub inside_sandbox: bool,
    pub quiet: bool,
}

fn rlimit_resource(name: &str) -> libc::__rlimit_resource_t {
    crate::plan::limits::RLIMITS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, r, _)| *r)
        .unwrap_or_else(|| unreachable!("the plan only holds known limits, not {name}"))
}

/// sbx's own hard limits, by name (what a sandbox's limits are clamped to).
pub fn hard_rlimits() -> Vec<(String, u64)> {
    crate::plan::limits::RLIMITS
        .iter()
        .filter_map(|(k, res, _)| sys::hard_rlimit(*res).map(|v| (k.to_string(), v)))
        .collect()
}

impl Prepared {
    pub fn new(plan: &Plan) -> Prepared {
        let mut p = Prepared::build(
            &plan.command,
            &plan.env,
            &plan.caps,
            &plan.rlimits,
            &plan.seccomp,
            &plan.landlock,
        );
        p.not_found_hint = plan.not_found_hint.clone();
        p.inside_sandbox = plan.no_new_privs;
        p.quiet = plan.quiet;
        p
    }

    /// From the parts of a plan (also what `--enter` has from a sandbox's record).
    pub fn build(
        command: &[std::ffi::OsString],
        env: &[(std::ffi::OsString, std::ffi::OsString)],
        caps: &[u32],
        rlimits: &[(String, u64)],
        seccomp: &crate::seccomp::SeccompPlan,
        landlock: &crate::landlock::LandlockPlan,
    ) -> Prepared {
        let argv: Vec<CString> = command.iter().map(|a| sys::cstr(a)).collect();
        let env_c: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut b = k.as_bytes().to_vec();
                b.push(b'=');
                b.extend_from_slice(v.as_bytes());
                CString::new(b).unwrap_or_default()
            })
            .collect();
        let prog = command[0].as_bytes();
        let candidates = if prog.contains(&b'/') {
            vec![CString::new(prog).unwrap_or_default()]
        } else {
            let path = env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.as_bytes().to_vec())
                .unwrap_or_else(|| DEFAULT_PATH.as_bytes().to_vec());
            path.split(|b| *b == b':')
                .map(|dir| {
                    let dir = if dir.is_empty() { &b"."[..] } else { dir };
                    let mut p = dir.to_vec();
                    p.push(b'/');
                    p.extend_from_slice(prog);
                    CString::new(p).unwrap_or_default()
                })
                .collect()
        };
        Prepared {
            argv,
            env: env_c,
            candidates,
            caps: caps::mask(caps),
            rlimits: rlimits
                .iter()
                .map(|(k, v)| (rlimit_resource(k), k.clone(), *v))
                .collect(),
            filter: seccomp::build(seccomp),
            landlock: landlock::Rules::new(landlock),
            not_found_hint: None,
            inside_sandbox: false,
            quiet: false,
        }
    }
}

/// Enter the first of `dirs` that exists (for a launch: the invoking cwd, then $HOME,
/// then `/`; `--cwd` makes its directory required). Only once the old root is
/// detached: a `..` to the root would otherwise step onto it (see
/// [`crate::mount::detach_old_root`]).
fn enter_cwd(dirs: &[PathBuf], required: bool) -> Result<Vec<u8>, Error> {
    for dir in dirs {
        if sys::chdir(&sys::cstr(dir.as_os_str())).is_ok() {
            return Ok(dir.as_os_str().as_encoded_bytes().to_vec());
        }
        if required {
            return Err(Error::new(
                "--cwd",
                format!("{} does not exist inside the sandbox", dir.display()),
            ));
        }
    }
    sys::chdir(c"/").map_err(|e| e.at("cwd"))?;
    Ok(b"/".to_vec())
}

fn fail(e: Error) -> ! {
    eprintln!("sbx: {e}");
    crate::status::report_failure(&e);
    sys::exit_now(e.code)
}

/// Where the command starts: the first of `dirs` that exists inside (`/` if none;
/// with `required`, the first must exist), and the gate PID 1 holds.
pub struct Start<'a> {
    pub dirs: &'a [PathBuf],
    pub required: bool,
    pub umask: libc::mode_t,
    /// A launch's gate (see `launch::Command`): one byte once the new root is in
    /// place and the old one detached, one more once PID 1 has shed its privileges.
    /// None for `--enter`, whose namespaces are complete.
    pub gate: Option<OwnedFd>,
}

/// Runs in the command's process (a launch's: a child of PID 1; `--enter`'s: a child
/// of sbx in the sandbox's namespaces); never returns. What needs no path comes first,
/// while PID 1 may still be building the root; then, past the first gate, the
/// descriptors, rlimits, no_new_privs, the cwd and Landlock; past the last, seccomp
/// and execve.
pub fn exec_command(prep: &Prepared, start: Start) -> ! {
    sys::sigmask(libc::SIG_SETMASK, &sys::sigset(&[]));
    sys::umask(start.umask);
    own_session_keyring(prep);
    if let Err(e) = caps::drop_all_but(prep.caps) {
        fail(e);
    }
    // No path is walked before this gate (the old root may still be stacked on the
    // new one, see crate::mount::detach_old_root), not even /proc/self/fd below.
    if let Some(Err(why)) = start.gate.as_ref().map(|g| Gate::RootReady.pass(g.as_fd())) {
        why.exit("the command's process");
    }
    // Nothing sbx or its caller had open reaches the command: 0, 1, 2 only (and the
    // gate, moved to 3, until execve closes it).
    let gate = sys::keep_only_fds(start.gate)
        .unwrap_or_else(|e| fail(e.at("close inherited descriptors")));
    set_rlimits(&prep.rlimits);
    // no_new_privs before Landlock: with every capability gone, landlock_restrict_self
    // and seccomp both require it.
    if let Err(e) = sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS") {
        fail(e.at("no_new_privs"));
    }
    let pwd = enter_cwd(start.dirs, start.required).unwrap_or_else(|e| fail(e));
    trace::step("command", || {
        format!("cwd {}", String::from_utf8_lossy(&pwd))
    });
    let mut env = prep.env.clone();
    let mut pwd_var = b"PWD=".to_vec();
    pwd_var.extend_from_slice(&pwd);
    env.push(CString::new(pwd_var).unwrap_or_default());
    // What the kernel cannot enforce was announced (or refused) by the plan; what it
    // can is applied here or the launch stops.
    if let Err(e) = landlock::apply(&prep.landlock) {
        fail(e.at("landlock"));
    }
    if let Some(Err(why)) = gate.as_ref().map(|g| Gate::Exec.pass(g.as_fd())) {
        why.exit("the command's process");
    }
    // Seccomp last, so the filter does not need to allow anything sbx itself does
    // (the gate's read included).
    if let Err(errno) = seccomp::install(&prep.filter) {
        fail(Error::sys(
            "seccomp",
            "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)",
            errno,
        ));
    }
    trace::step("command", || "execve".into());
    fail(exec_first(prep, &env))
}

/// A session keyring of its own: the caller's (Kerberos tickets, fscrypt keys) is
/// not readable or changeable from inside (keyrings(7)). Reported, not fatal, where
/// an outer seccomp policy refuses keyctl.
fn own_session_keyring(prep: &Prepared) {
    let Err(errno) = sys::join_new_session_keyring() else {
        return;
    };
    let e = Error::sys(
        "session keyring",
        "keyctl(KEYCTL_JOIN_SESSION_KEYRING)",
        errno,
    );
    // Inside another sandbox (sbx in sbx) the outer policy refuses keyctl, and the
    // keyring shared is that sandbox's own, not the user's: said, not warned.
    match prep.inside_sandbox {
        true if !prep.quiet => eprintln!(
            "sbx: the command shares the outer sandbox's session keyring (keyctl is refused there)"
        ),
        true => {}
        false => eprintln!("sbx: warning: {e}: the command shares the caller's session keyring"),
    }
}

fn set_rlimits(rlimits: &[(libc::__rlimit_resource_t, String, u64)]) {
    for (res, name, v) in rlimits {
        if let Err(errno) = sys::setrlimit(*res, *v) {
            fail(Error::sys(
                "rlimits",
                format!("setrlimit({name}, {v})"),
                errno,
            ));
        }
    }
}

/// execve each candidate path in turn, as execvp(3) walks PATH; returns the error
/// to leave with: 126 for the first that exists but cannot run, else 127.
fn exec_first(prep: &Prepared, env: &[CString]) -> Error {
    let mut cannot: Option<(usize, i32)> = None;
    for (i, path) in prep.candidates.iter().enumerate() {
        let errno = sys::execve(path, &prep.argv, env);
        match errno {
            // Not in this PATH entry: keep looking, as execvp(3) does.
            libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP => {}
            _ => {
                cannot.get_or_insert((i, errno));
            }
        }
    }
    let name = String::from_utf8_lossy(prep.argv[0].as_bytes()).into_owned();
    match cannot {
        Some((i, errno)) => {
            let path = prep.candidates[i].to_string_lossy().into_owned();
            let mut e = Error::sys("cannot execute", format!("execve({path:?})"), errno);
            e.code = EXIT_CANNOT_EXEC;
            e
        }
        None => {
            let mut e = Error::new(
                name,
                match &prep.not_found_hint {
                    Some(hint) => format!("command not found inside the sandbox; {hint}"),
                    None => "command not found inside the sandbox".to_string(),
                },
            );
            e.code = EXIT_NOT_FOUND;
            e
        }
    }
}

//! Landlock scopes (ABI 6+): the command may not signal processes outside its
//! Landlock domain nor connect to abstract unix sockets created outside it. This is
//! what keeps `kill(0)` from reaching the caller's process group (the command shares
//! it, so that an interactive shell keeps job control) and host services listening on
//! abstract sockets (X11, D-Bus) out of reach even with `--net host`.
//! Filesystem rules are the hardening work's; this module applies the scopes only.

use crate::sys;

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1;
const SCOPE_SIGNAL: u64 = 2;
/// The first ABI with scopes.
pub const SCOPES_ABI: i64 = 6;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// The kernel's Landlock ABI version, or None without Landlock.
pub fn abi() -> Option<i64> {
    // SAFETY: the version query takes no attribute.
    let v = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v)
}

pub enum Scoped {
    Applied,
    /// The kernel cannot scope (no Landlock, or ABI below 6): reported by the caller.
    Unavailable(String),
}

/// Restrict this thread (and what it execs) to its own signal and abstract-socket
/// scope. Needs no_new_privs set first.
pub fn apply_scopes() -> Result<Scoped, sys::SysError> {
    match abi() {
        Some(v) if v >= SCOPES_ABI => {}
        Some(v) => {
            return Ok(Scoped::Unavailable(format!(
                "Landlock ABI {v} (scopes need {SCOPES_ABI})"
            )))
        }
        None => return Ok(Scoped::Unavailable("no Landlock in this kernel".into())),
    }
    let attr = RulesetAttr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped: SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
    };
    // SAFETY: a valid attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(sys::SysError {
            call: "landlock_create_ruleset(scoped=abstract-unix-socket|signal)".into(),
            errno: sys::errno(),
        });
    }
    // SAFETY: the descriptor was just created by the kernel.
    let r = unsafe { libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0u32) };
    let errno = sys::errno();
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd as libc::c_int) };
    if r < 0 {
        return Err(sys::SysError {
            call: "landlock_restrict_self".into(),
            errno,
        });
    }
    Ok(Scoped::Applied)
}

//! The seccomp filter, assembled in-process in microseconds (DESIGN.md §7: never compile
//! with libseccomp at launch). This first policy holds the terminal-injection rule:
//! `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` fail with EPERM, compared on the low 32 bits
//! of the request because the kernel's tty layer truncates it (CVE-2019-10063, flatpak's
//! filter was bypassed with the high bits set). Unlike `setsid()` (bwrap's
//! `--new-session`, CVE-2017-5226), this keeps the controlling terminal, so an
//! interactive shell keeps job control.
//!
//! The x32 ABI (syscall numbers with bit 30 set) gets EPERM and foreign architectures
//! (the i386 `int 0x80` entry) are killed, so neither can call ioctl around the rule.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompPlan {
    /// ioctl requests refused, by name and low-32-bit value.
    pub deny_ioctl: Vec<(String, u32)>,
}

pub const TIOCSTI: u32 = 0x5412;
pub const TIOCLINUX: u32 = 0x541C;

impl Default for SeccompPlan {
    fn default() -> Self {
        SeccompPlan {
            deny_ioctl: vec![("TIOCSTI".into(), TIOCSTI), ("TIOCLINUX".into(), TIOCLINUX)],
        }
    }
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_ALLOW: u32 = 0x7FFF_0000;

// struct seccomp_data: nr @0, arch @4, instruction_pointer @8, args[6] @16.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of args[1] (both supported targets are little-endian).
const OFF_ARG1_LO: u32 = 16 + 8;

pub type Program = Vec<libc::sock_filter>;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Assemble the filter for `plan`. Layout (n = number of denied requests):
/// ```text
/// 0  ld arch; 1 jeq NATIVE ? 3 : 2; 2 ret KILL
/// 3  ld nr;   4 jge X32 ? DENY : 5 (x86_64 only)
///    jeq ioctl ? next : ALLOW;  ld arg1.lo;  n × jeq REQ ? DENY : next
///    ALLOW: ret ALLOW;  DENY: ret ERRNO(EPERM)
/// ```
pub fn build(plan: &SeccompPlan) -> Program {
    let n = plan.deny_ioctl.len();
    let x32 = usize::from(cfg!(target_arch = "x86_64"));
    let ioctl_jeq = 4 + x32;
    let allow = ioctl_jeq + 2 + n;
    let deny = allow + 1;
    // Jump offsets count from the instruction after the jump.
    let rel = |from: usize, to: usize| (to - from - 1) as u8;
    let mut p = vec![
        stmt(LD_ABS_W, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_ABS_W, OFF_NR),
    ];
    if x32 == 1 {
        p.push(jump(JGE_K, X32_SYSCALL_BIT, rel(4, deny), 0));
    }
    p.push(jump(
        JEQ_K,
        libc::SYS_ioctl as u32,
        0,
        rel(ioctl_jeq, allow),
    ));
    p.push(stmt(LD_ABS_W, OFF_ARG1_LO));
    for (i, (_, req)) in plan.deny_ioctl.iter().enumerate() {
        p.push(jump(JEQ_K, *req, rel(ioctl_jeq + 2 + i, deny), 0));
    }
    p.push(stmt(RET_K, RET_ALLOW));
    p.push(stmt(RET_K, RET_ERRNO | libc::EPERM as u32));
    debug_assert_eq!(p.len(), deny + 1);
    p
}

/// Install `prog` for this thread. Requires no_new_privs (or CAP_SYS_ADMIN).
pub fn install(prog: &Program) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a valid program that outlives the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok(())
    }
}

/// A classic-BPF interpreter for the subset `build` emits, for unit tests: the policy
/// is tested rule by rule without loading it.
#[cfg(test)]
pub fn run(prog: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            LD_ABS_W => {
                let k = ins.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            JEQ_K | JGE_K => {
                let taken = if ins.code == JEQ_K {
                    acc == ins.k
                } else {
                    acc >= ins.k
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            RET_K => return ins.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(arch: u32, nr: u32, req: u64) -> u32 {
        run(
            &build(&SeccompPlan::default()),
            arch,
            nr,
            [0, req, 0, 0, 0, 0],
        )
    }

    const IOCTL: u32 = libc::SYS_ioctl as u32;
    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn tiocsti_and_tioclinux_are_refused() {
        assert_eq!(verdict(AUDIT_ARCH, IOCTL, TIOCSTI as u64), EPERM);
        assert_eq!(verdict(AUDIT_ARCH, IOCTL, TIOCLINUX as u64), EPERM);
    }

    #[test]
    fn high_bits_of_the_request_do_not_matter() {
        assert_eq!(
            verdict(AUDIT_ARCH, IOCTL, (1 << 32) | TIOCSTI as u64),
            EPERM
        );
        assert_eq!(
            verdict(AUDIT_ARCH, IOCTL, 0xFFFF_FFFF_0000_0000 | TIOCLINUX as u64),
            EPERM
        );
    }

    #[test]
    fn other_ioctls_and_syscalls_are_allowed() {
        assert_eq!(verdict(AUDIT_ARCH, IOCTL, libc::TIOCGWINSZ), RET_ALLOW);
        assert_eq!(verdict(AUDIT_ARCH, IOCTL, libc::TIOCSPGRP), RET_ALLOW);
        assert_eq!(
            verdict(AUDIT_ARCH, libc::SYS_read as u32, TIOCSTI as u64),
            RET_ALLOW
        );
    }

    #[test]
    fn foreign_arch_is_killed() {
        assert_eq!(verdict(0x4000_0003, 54, TIOCSTI as u64), RET_KILL_PROCESS); // i386
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_syscalls_are_refused() {
        assert_eq!(
            verdict(AUDIT_ARCH, X32_SYSCALL_BIT | 514, TIOCSTI as u64),
            EPERM
        );
        assert_eq!(verdict(AUDIT_ARCH, X32_SYSCALL_BIT, 0), EPERM);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = build(&SeccompPlan::default());
        for (i, ins) in p
            .iter()
            .enumerate()
            .filter(|(_, ins)| ins.code == JEQ_K || ins.code == JGE_K)
        {
            assert!(i + 1 + (ins.jt as usize) < p.len());
            assert!(i + 1 + (ins.jf as usize) < p.len());
        }
    }
}

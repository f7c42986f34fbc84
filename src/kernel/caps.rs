//! Capabilities. The sandbox's processes hold every capability of their own user
//! namespace until the command is exec'd; the command keeps none of them (every set
//! empty, including the bounding set, so even uid 0 inside regains nothing at execve,
//! capabilities(7) "Transformation of capabilities during execve()") unless the user
//! named one with `--cap-add`.

use crate::error::Result;
use crate::sys;

const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

pub const CAP_SYS_ADMIN: u32 = 21;

/// `NET_RAW`, `net_raw` and `CAP_NET_RAW` all name capability 13.
pub fn parse(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

pub fn name(cap: u32) -> String {
    NAMES
        .get(cap as usize)
        .map(|n| format!("CAP_{}", n.to_ascii_uppercase()))
        .unwrap_or_else(|| format!("cap {cap}"))
}

pub fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | (1u64 << c))
}

/// Lower the effective set for a moment so that path lookups run with the user's own
/// rights only (bind sources: "nothing unreadable becomes readable").
pub fn with_effective_cleared<T>(f: impl FnOnce() -> T) -> Result<T> {
    let permitted = sys::cap_permitted().map_err(|e| e.at("read capabilities"))?;
    sys::capset(0, permitted, 0).map_err(|e| e.at("drop effective capabilities"))?;
    let out = f();
    sys::capset(permitted, permitted, 0).map_err(|e| e.at("restore effective capabilities"))?;
    Ok(out)
}

/// Leave only `keep` in every set: bounding first (PR_CAPBSET_DROP needs CAP_SETPCAP,
/// which is still effective), then ambient, then effective/permitted/inheritable.
pub fn drop_all_but(keep: u64) -> Result<()> {
    let step = "drop capabilities";
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match sys::prctl(
            libc::PR_CAPBSET_DROP,
            cap as libc::c_ulong,
            "PR_CAPBSET_DROP",
        ) {
            Ok(_) => {}
            // EINVAL: past the kernel's last capability.
            Err(e) if e.errno == libc::EINVAL => break,
            Err(e) => return Err(e.at(step)),
        }
    }
    sys::prctl2(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
        "PR_CAP_AMBIENT_CLEAR_ALL",
    )
    .map_err(|e| e.at(step))?;
    sys::capset(keep, keep, keep).map_err(|e| e.at(step))?;
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            sys::prctl2(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                &format!("PR_CAP_AMBIENT_RAISE, {}", name(cap)),
            )
            .map_err(|e| e.at(step))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        assert_eq!(parse("NET_RAW"), Some(13));
        assert_eq!(parse("cap_net_raw"), Some(13));
        assert_eq!(parse("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(parse("checkpoint_restore"), Some(40));
        assert_eq!(parse("NET_RAWR"), None);
        assert_eq!(name(13), "CAP_NET_RAW");
        assert_eq!(mask(&[0, 13]), 1 | (1 << 13));
    }
}

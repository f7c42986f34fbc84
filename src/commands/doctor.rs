//! `sbx --doctor`: what this host gives sbx, one line per fact, each missing one with
//! the fix. It changes nothing and starts no sandbox (but for a user namespace,
//! made and dropped by a short-lived child, which is the one way to know).

use crate::cgroup::{self, Request};
use crate::host::{Host, HostFs, RealFs, NEWGIDMAP, NEWUIDMAP};

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Can this user make a user namespace? A child tries, and reports by exit status.
fn userns_works() -> Result<(), i32> {
    match crate::sys::clone_fork(0) {
        Ok(0) => {
            let code = match crate::sys::unshare(libc::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e.errno.clamp(1, 255),
            };
            crate::sys::exit_now(code)
        }
        Ok(pid) => match crate::sys::waitpid(pid, 0) {
            Ok(Some((_, s))) if crate::sys::exit_code(s) == 0 => Ok(()),
            Ok(Some((_, s))) => Err(crate::sys::exit_code(s)),
            _ => Err(libc::ECHILD),
        },
        Err(e) => Err(e.errno),
    }
}

/// Major and minor of the running kernel.
fn kernel_version() -> Option<(u32, u32)> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = r.trim().split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

pub fn checks(host: &Host, fs: &dyn HostFs) -> Vec<Check> {
    vec![
        userns_check(fs),
        subids_check(host, fs),
        landlock_check(host),
        nproc_check(host),
        cgroup_check(host, fs),
        network_check(host, fs),
        seccomp_check(),
        bus_check(fs),
        desktop(host, fs),
        records_check(host),
    ]
}

fn userns_check(fs: &dyn HostFs) -> Check {
    let sysctl = |name: &str| {
        fs.read_small(std::path::Path::new(&format!("/proc/sys/{name}")))
            .and_then(|b| String::from_utf8(b).ok())
            .map(|t| t.trim().to_string())
    };
    // Ubuntu 23.10+ confines unprivileged user namespaces to programs an AppArmor
    // profile allows (`userns,`); Debian before 11 and some hardened kernels gate
    // them behind kernel.unprivileged_userns_clone; max_user_namespaces 0 turns them off.
    let apparmor = sysctl("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1");
    let clone_off = sysctl("kernel/unprivileged_userns_clone").as_deref() == Some("0");
    let max_zero = sysctl("user/max_user_namespaces").as_deref() == Some("0");
    match userns_works() {
        Ok(()) => check(
            "user namespaces",
            true,
            if apparmor {
                "unprivileged user namespaces work (AppArmor restricts them, and allows sbx)"
            } else {
                "unprivileged user namespaces work"
            },
        ),
        Err(e) => check(
            "user namespaces",
            false,
            format!(
                "unshare(CLONE_NEWUSER): {}: sbx cannot run; {}",
                crate::error::strerror(e),
                if apparmor {
                    "AppArmor restricts unprivileged user namespaces \
                     (kernel.apparmor_restrict_unprivileged_userns = 1): install sbx's profile, \
                     sudo install -m 644 /usr/share/sbx/apparmor/sbx /etc/apparmor.d/sbx && \
                     sudo apparmor_parser -r /etc/apparmor.d/sbx (the Debian package does this)"
                } else if clone_off {
                    "kernel.unprivileged_userns_clone = 0: sudo sysctl -w \
                     kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d to keep it)"
                } else if max_zero {
                    "user.max_user_namespaces = 0: sudo sysctl -w user.max_user_namespaces=15000"
                } else {
                    "check user.max_user_namespaces, kernel.unprivileged_userns_clone and \
                     kernel.apparmor_restrict_unprivileged_userns, or a container's seccomp \
                     policy"
                }
            ),
        ),
    }
}

fn subids_check(host: &Host, fs: &dyn HostFs) -> Check {
    let helpers = [NEWUIDMAP, NEWGIDMAP]
        .iter()
        .all(|h| fs.is_privileged_helper(std::path::Path::new(h)));
    let ranges = !host.subuid.is_empty() && !host.subgid.is_empty();
    check(
        "subordinate ids",
        helpers && ranges,
        match (ranges, helpers) {
            (true, true) => "ranges in /etc/subuid and /etc/subgid, setuid newuidmap/newgidmap: \
                             many ids inside"
                .to_string(),
            (false, _) => format!(
                "no ranges for {} in /etc/subuid and /etc/subgid: a single id is mapped (add \
                 `{}:100000:65536` to both for many)",
                host.user, host.user
            ),
            (true, false) => format!(
                "{NEWUIDMAP} or {NEWGIDMAP} is missing or not setuid root (package uidmap): a \
                 single id is mapped"
            ),
        },
    )
}

fn landlock_check(host: &Host) -> Check {
    match host.landlock_abi {
        Some(abi) => check("landlock", true, format!("ABI {abi}")),
        None => check(
            "landlock",
            false,
            "not offered by this kernel (CONFIG_SECURITY_LANDLOCK, lsm=landlock): the \
             filesystem rules rest on the mount tree alone",
        ),
    }
}

fn nproc_check(host: &Host) -> Check {
    let per_sandbox = kernel_version().is_some_and(|v| v >= (5, 14));
    check(
        "process ceiling",
        per_sandbox && host.uid != 0,
        if host.uid == 0 {
            "you are root: the kernel never applies RLIMIT_NPROC to uid 0, so the profiles' \
             nproc holds nothing; run sbx as an ordinary user, or use --pids (cgroup)"
        } else if per_sandbox {
            "RLIMIT_NPROC counts each sandbox's own processes (Linux 5.14+): every profile's \
             nproc holds a fork bomb"
        } else {
            "Linux before 5.14 counts RLIMIT_NPROC over all of the user's processes: the \
             profiles' nproc is a host-wide ceiling here"
        },
    )
}

fn cgroup_check(host: &Host, fs: &dyn HostFs) -> Check {
    let all = Request {
        memory: Some(1),
        cpus: Some(1.0),
        pids: Some(1),
    };
    let mountinfo = fs.mountinfo();
    match cgroup::find(host.uid, &host.cgroup_self().0, &mountinfo, fs, &all) {
        Ok(d) => check(
            "cgroup limits",
            true,
            format!(
                "--memory, --cpus and --pids make their leaf in {}",
                d.parent.display()
            ),
        ),
        Err(m) => check(
            "cgroup limits",
            false,
            format!(
                "--memory, --cpus and --pids are unavailable: {}{}",
                m.explain(),
                match m {
                    cgroup::Missing::Controllers(..) => String::new(),
                    _ => cgroup::v1_note(&mountinfo, &all).unwrap_or_default(),
                }
            ),
        ),
    }
}

fn network_check(host: &Host, fs: &dyn HostFs) -> Check {
    let pasta = fs.is_executable_file(std::path::Path::new(crate::plan::network::PASTA));
    check(
        "network",
        pasta && host.tun_usable,
        match (pasta, host.tun_usable) {
            (true, true) => "pasta for --net user".to_string(),
            (false, _) => format!(
                "{} is missing (package passt): --net user is unavailable",
                crate::plan::network::PASTA
            ),
            (true, false) => {
                "/dev/net/tun is not usable by you: --net user is unavailable".to_string()
            }
        },
    )
}

fn seccomp_check() -> Check {
    // seccomp: the kernel offers filters when PR_GET_SECCOMP answers (EINVAL: built
    // without CONFIG_SECCOMP).
    let seccomp = crate::sys::prctl_get(libc::PR_GET_SECCOMP).is_ok();
    check(
        "seccomp",
        seccomp,
        if seccomp {
            "filters available: every profile's deny-list applies"
        } else {
            "the kernel has no seccomp (CONFIG_SECCOMP_FILTER): profiles with seccomp on \
             fail; seccomp = \"off\" in a profile runs without it, announced"
        },
    )
}

fn bus_check(fs: &dyn HostFs) -> Check {
    let proxy = fs.is_executable_file(std::path::Path::new(crate::plan::dbus::PROXY));
    check(
        "session bus",
        proxy,
        if proxy {
            format!(
                "{} filters the bus for the dbus abstraction",
                crate::plan::dbus::PROXY
            )
        } else {
            format!(
                "{} is missing (package xdg-dbus-proxy): profiles with [dbus] cannot start",
                crate::plan::dbus::PROXY
            )
        },
    )
}

fn records_check(host: &Host) -> Check {
    let located = crate::record::dir_for(host);
    match &located.dir {
        Some(d) => check(
            "records",
            true,
            format!(
                "sandboxes are recorded in {} (--list, --enter)",
                d.display()
            ),
        ),
        None => check(
            "records",
            false,
            format!(
                "no safe place to record sandboxes ({}): --list and --enter see nothing",
                located.problems.join("; ")
            ),
        ),
    }
}

/// The display, sound and bus sockets a GUI profile would grant, found or not
/// (only said: a server or CI machine has none, and needs none).
fn desktop(host: &Host, fs: &dyn HostFs) -> Check {
    use std::path::PathBuf;
    let var = |k: &str| {
        host.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    let runtime = var("XDG_RUNTIME_DIR").map(PathBuf::from);
    let socket = |p: &PathBuf| {
        p.parent().is_some_and(|d| {
            fs.sockets_in(d)
                .iter()
                .any(|n| Some(n.as_os_str()) == p.file_name())
        })
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut look = |what: &str, p: Option<PathBuf>| match p {
        Some(p) if socket(&p) => found.push(format!("{what} {}", p.display())),
        Some(p) => missing.push(format!("{what} ({} is not a socket)", p.display())),
        None => missing.push(what.to_string()),
    };
    look(
        "wayland",
        var("WAYLAND_DISPLAY").and_then(|w| runtime.as_ref().map(|r| r.join(w))),
    );
    look(
        "x11",
        var("DISPLAY")
            .and_then(|d| {
                let n = d.strip_prefix(':')?.split('.').next()?.to_string();
                n.bytes().all(|b| b.is_ascii_digit()).then_some(n)
            })
            .map(|n| PathBuf::from(format!("/tmp/.X11-unix/X{n}"))),
    );
    look(
        "pulseaudio",
        runtime.as_ref().map(|r| r.join("pulse/native")),
    );
    look("pipewire", runtime.as_ref().map(|r| r.join("pipewire-0")));
    look(
        "session bus",
        var("DBUS_SESSION_BUS_ADDRESS").and_then(|a| {
            Some(PathBuf::from(
                a.strip_prefix("unix:path=")?.split(',').next()?,
            ))
        }),
    );
    let ok = found
        .iter()
        .any(|f| f.starts_with("wayland") || f.starts_with("x11"));
    check(
        "desktop",
        ok,
        format!(
            "for the browser profile and the x11, wayland, pulseaudio, pipewire and dbus \
             abstractions: found {}; not here: {}",
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            },
            if missing.is_empty() {
                "none".to_string()
            } else {
                missing.join(", ")
            }
        ),
    )
}

/// Print the report; the exit status is 0 when sbx can run here at all.
pub fn run(host: &Host, json: bool) -> i32 {
    let checks = checks(host, &RealFs);
    if json {
        println!("{}", serde_json::to_string_pretty(&checks).expect("json"));
    } else {
        for c in &checks {
            println!(
                "{} {:<16} {}",
                if c.ok { "ok " } else { "no " },
                c.name,
                crate::text::escape(&c.detail)
            );
        }
    }
    match checks.first() {
        Some(c) if !c.ok => crate::error::EXIT_SETUP,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a host where nothing is installed (ImaginaryFs: no helper, no pasta, no
    /// proxy, no socket), each line says what is missing and the package or command
    /// that brings it.
    #[test]
    fn each_missing_piece_is_named_with_its_fix() {
        let range = crate::userns::SubidRange {
            start: 100000,
            count: 65536,
        };
        let host = Host {
            user: "ada".into(),
            subuid: vec![range],
            subgid: vec![range],
            ..Host::default()
        };
        let report = checks(&host, &crate::host::ImaginaryFs);
        let line = |name: &str| report.iter().find(|c| c.name == name).unwrap();
        let sub = line("subordinate ids");
        assert!(!sub.ok && sub.detail.contains("package uidmap"), "{sub:?}");
        let net = line("network");
        assert!(!net.ok && net.detail.contains("package passt"), "{net:?}");
        let bus = line("session bus");
        assert!(
            !bus.ok && bus.detail.contains("package xdg-dbus-proxy"),
            "{bus:?}"
        );
        let desk = line("desktop");
        assert!(!desk.ok && desk.detail.contains("found none"), "{desk:?}");
        // Without ranges, the line says how to add them.
        let host = Host {
            user: "ada".into(),
            ..Host::default()
        };
        let checks = checks(&host, &crate::host::ImaginaryFs);
        let sub = checks.iter().find(|c| c.name == "subordinate ids").unwrap();
        assert!(sub.detail.contains("ada:100000:65536"), "{sub:?}");
    }
}

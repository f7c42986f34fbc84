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
            // SAFETY: unshare then leave the child at once.
            let code = unsafe {
                if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    0
                } else {
                    crate::sys::errno().clamp(1, 255)
                }
            };
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(code) }
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
    let mut out = Vec::new();
    out.push(match userns_works() {
        Ok(()) => check("user namespaces", true, "unprivileged user namespaces work"),
        Err(e) => check(
            "user namespaces",
            false,
            format!(
                "unshare(CLONE_NEWUSER): {}: sbx cannot run; check user.max_user_namespaces and \
                 kernel.apparmor_restrict_unprivileged_userns",
                crate::error::strerror(e)
            ),
        ),
    });
    let helpers = [NEWUIDMAP, NEWGIDMAP]
        .iter()
        .all(|h| fs.is_privileged_helper(std::path::Path::new(h)));
    let ranges = !host.subuid.is_empty() && !host.subgid.is_empty();
    out.push(check(
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
    ));
    out.push(match host.landlock_abi {
        Some(abi) => check("landlock", true, format!("ABI {abi}")),
        None => check(
            "landlock",
            false,
            "not offered by this kernel (CONFIG_SECURITY_LANDLOCK, lsm=landlock): the \
             filesystem rules rest on the mount tree alone",
        ),
    });
    let per_sandbox = kernel_version().is_some_and(|v| v >= (5, 14));
    out.push(check(
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
    ));
    let all = Request {
        memory: Some(1),
        cpus: Some(1.0),
        pids: Some(1),
    };
    let mountinfo = fs.mountinfo();
    out.push(
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
        },
    );
    let pasta = fs.is_executable_file(std::path::Path::new(crate::plan::network::PASTA));
    out.push(check(
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
    ));
    let located = crate::record::dir_for(host);
    out.push(match &located.dir {
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
    });
    out
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

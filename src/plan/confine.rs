//! The hardening layers of the plan: the seccomp policy and the Landlock rules, both
//! pure functions of the profile, the mounts and the kernel's Landlock ABI, and what
//! `--require` and `landlock = "require"` make of a missing layer.

use crate::cli::{Cli, Layer};
use crate::error::{Error, Result};
use crate::landlock::{self, FsRule, LandlockPlan};
use crate::plan::Mount;
use crate::profile::schema::{LandlockMode, SeccompMode};
use crate::profile::Resolved;
use crate::seccomp::SeccompPlan;

/// Landlock rights for each mount op ([`MountOp::landlock_rules`]). The sandbox
/// root itself is only listable.
pub fn fs_rules(mounts: &[Mount]) -> Vec<FsRule> {
    let mut rules = vec![FsRule {
        path: "/".into(),
        access: landlock::READ_DIR,
        origin: "the sandbox root".into(),
    }];
    for m in mounts {
        rules.extend(
            m.op.landlock_rules()
                .into_iter()
                .map(|(path, access)| FsRule {
                    path,
                    access,
                    origin: m.origin.clone(),
                }),
        );
    }
    rules
}

/// The Landlock plan, or the error `landlock = "require"` / `--require landlock`
/// makes of a part this kernel cannot enforce.
pub fn landlock_plan(
    cli: &Cli,
    profile: &Resolved,
    mounts: &[Mount],
    kernel_abi: Option<i64>,
) -> Result<LandlockPlan> {
    let required = cli.require.contains(&Layer::Landlock);
    let mode = match (profile.landlock, required) {
        (Some(LandlockMode::Off), true) => {
            return Err(Error::new(
                "--require landlock",
                format!("{} turns Landlock off", profile.where_set("landlock")),
            ))
        }
        (Some(LandlockMode::Off), false) => landlock::Mode::Off,
        (Some(LandlockMode::Require), _) | (_, true) => landlock::Mode::Require,
        _ => landlock::Mode::Default,
    };
    let plan = LandlockPlan::new(
        mode,
        kernel_abi,
        fs_rules(mounts),
        profile.tcp_bind.clone(),
        profile.tcp_connect.clone(),
    );
    if mode == landlock::Mode::Require && !plan.missing.is_empty() {
        let step = if required {
            "--require landlock".to_string()
        } else {
            profile.where_set("landlock")
        };
        return Err(Error::new(
            step,
            format!(
                "required but not enforceable here: {}",
                plan.missing.join("; ")
            ),
        ));
    }
    Ok(plan)
}

/// The seccomp policy: the profile's mode and lists. Seccomp is never best-effort (a
/// filter that does not install stops the launch), so `--require seccomp` only has
/// to refuse a profile that turns it off.
pub fn seccomp_plan(cli: &Cli, profile: &Resolved) -> Result<SeccompPlan> {
    match profile.seccomp {
        Some(SeccompMode::Off) if cli.require.contains(&Layer::Seccomp) => Err(Error::new(
            "--require seccomp",
            format!("{} turns seccomp off", profile.where_set("seccomp")),
        )),
        Some(SeccompMode::Off) => Ok(SeccompPlan::off()),
        mode => {
            let names = |l: &[(String, crate::profile::Loc)]| -> Vec<String> {
                l.iter().map(|(n, _)| n.clone()).collect()
            };
            let (allow, deny) = (names(&profile.seccomp_allow), names(&profile.seccomp_deny));
            let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
            let deny: Vec<&str> = deny.iter().map(String::as_str).collect();
            SeccompPlan::with_lists(mode == Some(SeccompMode::Strict), &allow, &deny).map_err(|e| {
                let loc = profile
                    .seccomp_allow
                    .iter()
                    .chain(&profile.seccomp_deny)
                    .find(|(n, _)| *n == e.name);
                Error::new(
                    loc.map(|(_, l)| l.to_string())
                        .unwrap_or_else(|| format!("profile {}", profile.name)),
                    e.detail,
                )
            })
        }
    }
}

/// Weakened layers the profile asked for, announced even with `-q`.
pub fn warnings(profile: &Resolved, seccomp: &SeccompPlan, landlock: &LandlockPlan) -> Vec<String> {
    let mut w = Vec::new();
    if seccomp.mode == crate::seccomp::Mode::Off {
        w.push(format!(
            "profile {}: seccomp = \"off\": no syscall is refused (keyrings, bpf, io_uring, mount, namespaces, ptrace, TIOCSTI are all open)",
            profile.name
        ));
    }
    if landlock.mode == landlock::Mode::Off {
        w.push(format!(
            "profile {}: landlock = \"off\": no filesystem rules and no scopes (the command can signal its caller's process group and reach host abstract sockets)",
            profile.name
        ));
    }
    w.extend(
        landlock
            .missing
            .iter()
            .map(|m| format!("not enforced: {m}")),
    );
    w
}

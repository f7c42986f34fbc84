//! Resource limits: the profile's `[limits]` with the command line's `--limit`,
//! `--memory`, `--cpus` and `--pids` over it, resolved against the caller's own hard
//! rlimits and the host's cgroup delegation (crate::cgroup).
//!
//! `nproc` is the process ceiling every shipped profile sets. Since Linux 5.14
//! (commit 21d1c5e386bc, "Reimplement RLIMIT_NPROC on top of ucounts") the count it
//! is checked against is kept per user namespace: set inside the sandbox's own, it
//! counts the sandbox's processes (threads), not the user's host-wide total, and the
//! user's host-wide limit still applies above it (ucounts are hierarchical). So a
//! fork bomb stops at the sandbox's ceiling and needs no cgroup. tests/limits.rs
//! checks this on the running kernel.

use crate::cgroup::{self, CgroupPlan, Request};
use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::host::{Host, HostFs};
use crate::profile::schema::{CgroupMode, Size};
use crate::profile::Resolved;

use super::compile;

/// How a limit's value is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A plain count (nofile, nproc, pids) or CPU seconds (cpu).
    Count,
    /// Bytes, or a number with K, M, G, T.
    Size,
    /// A fractional number of CPUs.
    Cpus,
}

/// Every key of `[limits]` and `--limit`, in the order they are shown: the rlimits,
/// then the cgroup ceilings. One table, so the profile, the command line, the error
/// messages and `--print-profile` cannot disagree.
const KEYS: [(&str, Kind); 11] = [
    ("nofile", Kind::Count),
    ("nproc", Kind::Count),
    ("fsize", Kind::Size),
    ("as", Kind::Size),
    ("core", Kind::Size),
    ("cpu", Kind::Count),
    ("stack", Kind::Size),
    ("memlock", Kind::Size),
    ("memory", Kind::Size),
    ("cpus", Kind::Cpus),
    ("pids", Kind::Count),
];

/// The cgroup ceilings among KEYS.
fn is_cgroup(key: &str) -> bool {
    matches!(key, "memory" | "cpus" | "pids")
}

/// The process ceiling of a profile that sets none (`minimal`'s).
pub const DEFAULT_NPROC: u64 = 4096;

/// RLIM_INFINITY: `unlimited` lifts a profile's limit (up to the caller's hard one).
pub const UNLIMITED: u64 = u64::MAX;

/// A value of `--limit KEY=VALUE`, `--memory`, `--cpus`, `--pids`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Int(u64),
    Cpus(f64),
    Unlimited,
}

fn size(s: &Size) -> std::result::Result<u64, String> {
    match s {
        // 0 is a valid limit for the rlimits (no core dumps), in either spelling.
        Size::Bytes(0) => Ok(0),
        Size::Text(t) if t.trim() == "0" => Ok(0),
        s => compile::parse_size(s),
    }
}

fn cpus_valid(c: f64) -> std::result::Result<f64, String> {
    if (0.01..=4096.0).contains(&c) {
        Ok(c)
    } else {
        Err(format!(
            "cpus {c} is out of range (0.01 to 4096: 0.5 is half of one CPU)"
        ))
    }
}

fn parse_value(key: &str, kind: Kind, v: &str) -> std::result::Result<Value, String> {
    let v = v.trim();
    if v == "unlimited" || v == "max" {
        return Ok(Value::Unlimited);
    }
    match kind {
        Kind::Count => v
            .parse()
            .map(Value::Int)
            .map_err(|_| format!("{key}: {v:?} is not a whole number (or `unlimited`)")),
        Kind::Size => size(&Size::Text(v.to_string()))
            .map(Value::Int)
            .map_err(|e| format!("{key}: {e}")),
        Kind::Cpus => v
            .parse::<f64>()
            .map_err(|_| format!("{key}: {v:?} is not a number of CPUs like 0.5 or 2"))
            .and_then(cpus_valid)
            .map(Value::Cpus),
    }
}

/// `--limit KEY=VALUE` and the three cgroup options, in the order given.
fn cli_limits(cli: &Cli) -> Result<Vec<(String, Value, String)>> {
    let mut out = Vec::new();
    for arg in &cli.limit {
        let opt = format!("--limit {arg}");
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| Error::new(&opt, "expected KEY=VALUE, e.g. --limit nproc=512"))?;
        let (key, kind) = KEYS.iter().find(|(n, _)| *n == k).ok_or_else(|| {
            let names: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            Error::new(
                &opt,
                format!("unknown limit {k:?}; the limits are {}", names.join(", ")),
            )
        })?;
        let value = parse_value(key, *kind, v).map_err(|e| Error::new(&opt, e))?;
        out.push((key.to_string(), value, opt));
    }
    for (key, given, kind) in [
        ("memory", &cli.memory, Kind::Size),
        ("cpus", &cli.cpus, Kind::Cpus),
        ("pids", &cli.pids, Kind::Count),
    ] {
        if let Some(v) = given {
            let opt = format!("--{key} {v}");
            let value = parse_value(key, kind, v).map_err(|e| Error::new(&opt, e))?;
            out.push((key.to_string(), value, opt));
        }
    }
    Ok(out)
}

/// The profile's rlimits as (name, value), in KEYS order.
pub fn profile_rlimits(p: &Resolved) -> Result<Vec<(String, u64)>> {
    let r = &p.limits;
    let sz = |s: &Option<Size>| -> Result<Option<u64>> {
        s.as_ref()
            .map(size)
            .transpose()
            .map_err(|e| Error::new(p.where_set("limits"), e))
    };
    let all = [
        ("nofile", r.nofile),
        ("nproc", r.nproc),
        ("fsize", sz(&r.fsize)?),
        ("as", sz(&r.address_space)?),
        ("core", sz(&r.core)?),
        ("cpu", r.cpu),
        ("stack", sz(&r.stack)?),
        ("memlock", sz(&r.memlock)?),
    ];
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect())
}

/// The profile's cgroup ceilings.
pub fn profile_request(p: &Resolved) -> Result<Request> {
    let r = &p.limits;
    let at = |e: String| Error::new(p.where_set("limits"), e);
    Ok(Request {
        memory: r
            .memory
            .as_ref()
            .map(compile::parse_size)
            .transpose()
            .map_err(|e| at(format!("memory: {e}")))?,
        cpus: r.cpus.map(cpus_valid).transpose().map_err(at)?,
        pids: match r.pids {
            Some(0) => return Err(at("pids: 0 would stop the sandbox before it starts".into())),
            p => p,
        },
    })
}

/// The limits in force: rlimits for the command, and the cgroup leaf if any.
#[derive(Debug, Default)]
pub struct Resolution {
    pub rlimits: Vec<(String, u64)>,
    pub cgroup: Option<CgroupPlan>,
    pub notices: Vec<String>,
}

pub fn resolve(cli: &Cli, profile: &Resolved, host: &Host, fs: &dyn HostFs) -> Result<Resolution> {
    let mut rlimits = profile_rlimits(profile)?;
    let mut want = Cgroups {
        req: profile_request(profile)?,
        required: profile.limits.cgroup != Some(CgroupMode::BestEffort)
            || cli.require.contains(&crate::cli::Layer::Cgroup),
        step: profile.where_set("limits"),
    };
    for (key, value, opt) in cli_limits(cli)? {
        if is_cgroup(&key) {
            want.take(&key, value, opt)?;
            continue;
        }
        let v = match value {
            Value::Unlimited => UNLIMITED,
            Value::Int(n) => n,
            Value::Cpus(_) => unreachable!("only cpus takes a fraction"),
        };
        // Above the caller's hard limit: setrlimit would fail with EPERM (raising
        // it needs CAP_SYS_RESOURCE in the initial namespace), so it is refused here,
        // where --dry-run sees it too.
        let hard = hard_limit(host, &key);
        if v != UNLIMITED && v > hard {
            return Err(Error::new(
                opt,
                format!(
                    "above your own hard limit ({hard}); a sandbox cannot raise it (ulimit -H)"
                ),
            ));
        }
        rlimits.retain(|(k, _)| *k != key);
        rlimits.push((key, v));
    }
    // A profile that sets no process ceiling (an abstraction run on its own, a
    // profile of the user's) still gets one: no sandbox is without it unless it asks.
    if !rlimits.iter().any(|(k, _)| k == "nproc") {
        rlimits.push(("nproc".into(), DEFAULT_NPROC));
    }
    // The profile's (and `unlimited`) within the caller's own: a lower hard limit
    // already holds, and is kept.
    for (k, v) in rlimits.iter_mut() {
        *v = (*v).min(hard_limit(host, k));
    }
    rlimits.sort_by_key(|(k, _)| KEYS.iter().position(|(n, _)| n == k));
    let mut notices = Vec::new();
    // copy_process() skips the RLIMIT_NPROC check for uid 0 (INIT_USER): said, not
    // assumed to hold.
    if host.uid == 0 && rlimits.iter().any(|(k, v)| k == "nproc" && *v != UNLIMITED) {
        notices.push(
            "running as root: the kernel does not apply the process ceiling (nproc) to uid 0; \
             run sbx as an ordinary user, or use --pids where cgroups are delegated"
                .to_string(),
        );
    }
    let cgroup = want.plan(host, fs, &mut notices)?;
    Ok(Resolution {
        rlimits,
        cgroup,
        notices,
    })
}

/// The cgroup ceilings asked for, whether they must hold, and who asked.
struct Cgroups {
    req: Request,
    required: bool,
    step: String,
}

impl Cgroups {
    /// A `--memory`, `--pids` or `--cpus` from the command line, over the profile's.
    fn take(&mut self, key: &str, value: Value, opt: String) -> Result<()> {
        if matches!(value, Value::Int(0)) {
            return Err(Error::new(
                opt,
                format!("{key} 0 would stop the sandbox before it starts; give a ceiling above 0"),
            ));
        }
        let int = match value {
            Value::Int(n) => Some(n),
            _ => None,
        };
        match key {
            "memory" => self.req.memory = int,
            "pids" => self.req.pids = int,
            _ => {
                self.req.cpus = match value {
                    Value::Cpus(c) => Some(c),
                    _ => None,
                }
            }
        }
        // Asked for on the command line: wanted, so never silently dropped.
        if value != Value::Unlimited {
            self.required = true;
            self.step = opt;
        }
        Ok(())
    }

    /// The sandbox's cgroup leaf, if ceilings were asked for and this host delegates
    /// a place for it; where it does not, an error when they are required, else a
    /// notice and none.
    fn plan(
        self,
        host: &Host,
        fs: &dyn HostFs,
        notices: &mut Vec<String>,
    ) -> Result<Option<CgroupPlan>> {
        let Cgroups {
            req,
            required,
            step,
        } = self;
        if req.is_empty() {
            return Ok(None);
        }
        let mountinfo = fs.mountinfo();
        let why = |m: cgroup::Missing| match m {
            cgroup::Missing::Controllers(..) => m.explain(),
            _ => m.explain() + &cgroup::v1_note(&mountinfo, &req).unwrap_or_default(),
        };
        match cgroup::find(host.uid, &host.cgroup_self().0, &mountinfo, fs, &req) {
            Ok(d) => {
                // The leaf's name must tell a live launcher from a dead one.
                let start = host.cgroup_self().1;
                if start == 0 {
                    return Err(Error::new(
                        step,
                        "cannot read sbx's own start time (/proc/self/stat), which names its cgroup",
                    ));
                }
                let leaf = cgroup::leaf_name(host.pid, start);
                Ok(Some(CgroupPlan {
                    parent: d.parent,
                    launcher: d.launcher_moves.then(|| cgroup::launcher_name(&leaf)),
                    leaf,
                    enable: d.enable.into_iter().map(String::from).collect(),
                    writes: req.writes(),
                    request: req,
                }))
            }
            Err(m) if required => Err(Error::new(
                step,
                format!(
                    "cannot set {}: {} (`sbx --doctor` checks this host)",
                    describe(&req),
                    why(m)
                ),
            )),
            Err(m) => {
                notices.push(format!(
                    "[limits] cgroup = \"best-effort\": running without {}: {}",
                    describe(&req),
                    why(m)
                ));
                Ok(None)
            }
        }
    }
}

/// With cgroup ceilings, no writable bind may reach a cgroup v2 file system: the
/// leaf's files belong to the user the sandbox runs as, so through such a bind the
/// sandbox could raise its own memory.max (without `nsdelegate`, which makes a
/// cgroup namespace's root read-only from inside, nothing else stops it).
pub fn cgroupfs_not_writable(mounts: &[super::Mount], mountinfo: &str) -> Result<()> {
    let points = cgroup::cgroup2_points(mountinfo);
    for m in mounts {
        if let super::MountOp::Bind { src, access, .. } = &m.op {
            let reaches = points
                .iter()
                .any(|p| p.starts_with(src) || src.starts_with(p));
            if *access != super::Access::ReadOnly && reaches {
                return Err(Error::new(
                    &m.origin,
                    format!(
                        "{} is bound writable and holds the cgroup v2 file system: with cgroup \
                         limits the sandbox could change its own; bind it read-only",
                        src.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The caller's hard limit for an rlimit (unknown: unlimited).
fn hard_limit(host: &Host, key: &str) -> u64 {
    host.rlimit_hard
        .iter()
        .find(|(k, _)| k == key)
        .map_or(UNLIMITED, |(_, v)| *v)
}

/// "memory 1.0 GiB, cpus 0.5, pids 100" for messages.
pub fn describe(r: &Request) -> String {
    let mut parts = Vec::new();
    if let Some(m) = r.memory {
        parts.push(format!("memory {}", crate::text::bytes(m)));
    }
    if let Some(c) = r.cpus {
        parts.push(format!("cpus {c}"));
    }
    if let Some(p) = r.pids {
        parts.push(format!("pids {p}"));
    }
    parts.join(", ")
}

/// The rlimits among KEYS: (name, setrlimit(2)'s resource, its row in
/// /proc/PID/limits).
pub const RLIMITS: [(&str, libc::__rlimit_resource_t, &str); 8] = [
    ("nofile", libc::RLIMIT_NOFILE, "Max open files"),
    ("nproc", libc::RLIMIT_NPROC, "Max processes"),
    ("fsize", libc::RLIMIT_FSIZE, "Max file size"),
    ("as", libc::RLIMIT_AS, "Max address space"),
    ("core", libc::RLIMIT_CORE, "Max core file size"),
    ("cpu", libc::RLIMIT_CPU, "Max cpu time"),
    ("stack", libc::RLIMIT_STACK, "Max stack size"),
    ("memlock", libc::RLIMIT_MEMLOCK, "Max locked memory"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_by_kind() {
        assert_eq!(
            parse_value("nproc", Kind::Count, "512"),
            Ok(Value::Int(512))
        );
        assert_eq!(parse_value("as", Kind::Size, "4G"), Ok(Value::Int(4 << 30)));
        assert_eq!(parse_value("core", Kind::Size, "0"), Ok(Value::Int(0)));
        assert_eq!(parse_value("cpus", Kind::Cpus, "0.5"), Ok(Value::Cpus(0.5)));
        assert_eq!(
            parse_value("nproc", Kind::Count, "unlimited"),
            Ok(Value::Unlimited)
        );
        assert_eq!(
            parse_value("memory", Kind::Size, "max"),
            Ok(Value::Unlimited)
        );
        for (k, kind, v) in [
            ("nproc", Kind::Count, "many"),
            ("nproc", Kind::Count, "-1"),
            ("as", Kind::Size, "4X"),
            ("cpus", Kind::Cpus, "0"),
            ("cpus", Kind::Cpus, "NaN"),
            ("cpus", Kind::Cpus, "5000"),
        ] {
            assert!(parse_value(k, kind, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn the_keys_are_the_schema() {
        // Every key of the table is a field of [limits] (deny_unknown_fields would
        // refuse a profile using one that is not).
        for (k, kind) in KEYS {
            let v = match kind {
                Kind::Cpus => "0.5".to_string(),
                Kind::Size => "\"1M\"".to_string(),
                Kind::Count => "7".to_string(),
            };
            let text = format!("version = 1\n[limits]\n{k} = {v}\n");
            assert!(crate::profile::resolve_text(&text).is_ok(), "{k}");
        }
        // The rlimits are KEYS' non-cgroup keys, in the same order.
        let from_keys: Vec<&str> = KEYS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !is_cgroup(k))
            .collect();
        let rlimits: Vec<&str> = RLIMITS.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(rlimits, from_keys);
    }
}

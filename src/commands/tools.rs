//! The profile tools: `--profiles`, `--print-profile`, `--check-profile`.

use std::path::Path;

use crate::cli::Cli;
use crate::error::{Error, EXIT_SETUP};
use crate::host::{Host, HostFs, RealFs};
use crate::plan::mount_op::ProfileForm;
use crate::plan::{compile_profile, MountOp};
use crate::profile::vars::Vars;
use crate::profile::{self, Locations, Origin, Resolved, BUILTIN};

/// Run the tool `cli` asks for, if any; returns the exit status.
pub fn run(cli: &Cli, host: &Host) -> Option<i32> {
    let vars = Vars::from_host(host);
    let locs = Locations::new(Path::new(&vars.0["XDG_CONFIG_HOME"]));
    if cli.profiles {
        return Some(list(&locs, cli.json));
    }
    if let Some(spec) = &cli.print_profile {
        return Some(print(spec, &locs, &vars, host, cli.json));
    }
    if let Some(path) = &cli.check_profile {
        return Some(check(path, &locs, &vars, host));
    }
    None
}

struct Listed {
    name: String,
    origin: Origin,
    path: String,
    description: String,
    shadowed: bool,
}

fn list(locs: &Locations, json: bool) -> i32 {
    let mut found: Vec<Listed> = Vec::new();
    let mut push = |name: String, origin: Origin, path: String, text: &str| {
        let description = match profile::parse(&profile::Source {
            name: name.clone(),
            origin,
            display: path.clone(),
            dir: None,
            text: text.to_string(),
        }) {
            Ok(f) => f.description.unwrap_or_default(),
            Err(e) => format!("(invalid: {e})"),
        };
        let shadowed = found.iter().any(|f| f.name == name);
        found.push(Listed {
            name,
            origin,
            path,
            description,
            shadowed,
        });
    };
    for (dir, origin) in [(&locs.user, Origin::User), (&locs.system, Origin::System)] {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = profile::read_profile(&p).unwrap_or_default();
            push(name, origin, p.display().to_string(), &text);
        }
    }
    for (name, text) in BUILTIN {
        push(
            name.to_string(),
            Origin::Builtin,
            format!("builtin:{name}"),
            text,
        );
    }
    if json {
        let v: Vec<serde_json::Value> = found
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name, "source": f.origin.label(), "path": f.path,
                    "description": f.description, "shadowed": f.shadowed,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
    } else {
        println!("{:<12} {:<9} DESCRIPTION", "NAME", "SOURCE");
        for f in &found {
            let note = if f.shadowed {
                " (shadowed by the one above)"
            } else {
                ""
            };
            // Names, descriptions and paths come from files: escaped.
            let esc = crate::text::escape;
            println!(
                "{:<12} {:<9} {}{note}",
                esc(&f.name),
                f.origin.label(),
                esc(&f.description)
            );
            if f.origin != Origin::Builtin {
                println!("{:<12} {:<9} {}", "", "", esc(&f.path));
            }
        }
    }
    0
}

fn report(errors: &[Error]) -> i32 {
    for e in errors {
        eprintln!("sbx: {e}");
    }
    EXIT_SETUP
}

fn resolve_all(
    spec: &str,
    locs: &Locations,
    vars: &Vars,
    host: &Host,
) -> Result<(Resolved, crate::plan::Compiled), Vec<Error>> {
    resolve_with(spec, locs, vars, host, &RealFs)
}

fn resolve_with(
    spec: &str,
    locs: &Locations,
    vars: &Vars,
    host: &Host,
    fs: &dyn HostFs,
) -> Result<(Resolved, crate::plan::Compiled), Vec<Error>> {
    let r = profile::resolve(spec, locs, host.cwd.as_deref()).map_err(|e| vec![e])?;
    let c = compile_profile(&r, host, fs, vars)?;
    Ok((r, c))
}

fn check(path: &str, locs: &Locations, vars: &Vars, host: &Host) -> i32 {
    // A path even without a `/`: this checks a file.
    let spec = if profile::is_path(path) {
        path.to_string()
    } else {
        format!("./{path}")
    };
    // Entry errors first (all of them), then what only the whole plan can tell (the
    // trust rule, the id mode, the hostname, the limits), as a launch would.
    let result = resolve_all(&spec, locs, vars, host).and_then(|rc| {
        let cli = crate::cli::parse(["sbx", "--profile", spec.as_str(), "true"])
            .map_err(|e| vec![Error::new("--check-profile", e.to_string())])?;
        crate::plan::Plan::build_with(&cli, host, &RealFs, locs, vars).map_err(|e| vec![e])?;
        Ok(rc)
    });
    match result {
        Ok((r, c)) => {
            println!(
                "{path}: OK ({} files, {} mount entries, {} masks)",
                r.files.len(),
                c.mounts
                    .iter()
                    .filter(|m| !matches!(m.op, MountOp::Mask { .. }))
                    .count(),
                c.mounts
                    .iter()
                    .filter(|m| matches!(m.op, MountOp::Mask { .. }))
                    .count()
            );
            0
        }
        Err(errs) => {
            eprintln!(
                "sbx: {}: {} error(s)",
                crate::text::escape(path),
                errs.len()
            );
            report(&errs)
        }
    }
}

/// The resolved profile as a profile file of its own: no includes, variables
/// substituted, optional entries that do not apply here left out.
fn print(spec: &str, locs: &Locations, vars: &Vars, host: &Host, json: bool) -> i32 {
    match render(spec, locs, vars, host, &RealFs, json) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(errs) => report(&errs),
    }
}

/// The text `--print-profile` prints: a profile that, loaded again, gives the same
/// plan as `spec` on this host (tested for every shipped profile).
pub fn render(
    spec: &str,
    locs: &Locations,
    vars: &Vars,
    host: &Host,
    fs: &dyn HostFs,
    json: bool,
) -> Result<String, Vec<Error>> {
    let (r, c) = resolve_with(spec, locs, vars, host, fs)?;
    // Every field named: a field added to `Resolved` does not compile until it is
    // printed here (or said to need no printing).
    let Resolved {
        name: _,
        description: _,
        files: _,
        dirs: _,     // where profiles came from: a fact of the files, not a setting
        key_locs: _, // locations only
        hostname: _,
        cwd: _,
        net: _,
        ids: _,
        uid: _,
        gid: _,
        seccomp: _,
        landlock: _,
        vcs: _,
        tcp_bind: _,
        tcp_connect: _,
        seccomp_allow: _,
        seccomp_deny: _,
        mounts: _, // printed from the compiled mounts, below
        masks: _,  // likewise
        env_keep: _,
        env_ops: _,
        limits: _,
        dbus: _,
    } = &r;
    let mut t = scalar_keys(&r, vars);
    let (mounts, masks) = mount_tables(&c);
    if !masks.is_empty() {
        t.insert("mask".into(), toml::Value::Array(masks));
    }
    if let Some(env) = env_table(&r) {
        t.insert("env".into(), toml::Value::Table(env));
    }
    if let Some(limits) = limits_table(&r) {
        t.insert("limits".into(), toml::Value::Table(limits));
    }
    if let Some((own, talk)) = &r.dbus {
        let mut d = toml::Table::new();
        for (k, names) in [("own", own), ("talk", talk)] {
            d.insert(
                k.into(),
                toml::Value::Array(names.iter().map(|n| text(n)).collect()),
            );
        }
        t.insert("dbus".into(), toml::Value::Table(d));
    }
    t.insert("mount".into(), toml::Value::Array(mounts));
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&t).unwrap())
    } else {
        format!(
            "# profile {} resolved from: {}\n{}",
            crate::text::escape(&r.name),
            crate::text::escape(&r.files.join(", ")),
            toml::to_string(&t).unwrap_or_default()
        )
    })
}

fn text(v: &str) -> toml::Value {
    toml::Value::String(v.to_string())
}

/// The profile's single-valued keys and lists.
fn scalar_keys(r: &Resolved, vars: &Vars) -> toml::Table {
    let mut t = toml::Table::new();
    let s = text;
    t.insert("version".into(), toml::Value::Integer(1));
    if let Some(d) = &r.description {
        t.insert("description".into(), s(d));
    }
    for (k, v) in [
        ("hostname", r.hostname.clone()),
        (
            "cwd",
            r.cwd
                .as_ref()
                .map(|(c, _)| crate::profile::vars::expand(c, vars).unwrap_or_else(|_| c.clone())),
        ),
        ("net", r.net.map(|n| enum_str(&n))),
        ("ids", r.ids.map(|n| enum_str(&n))),
        ("seccomp", r.seccomp.map(|n| enum_str(&n))),
        ("landlock", r.landlock.map(|n| enum_str(&n))),
        ("vcs", r.vcs.map(|n| enum_str(&n))),
    ] {
        if let Some(v) = v {
            t.insert(k.into(), s(&v));
        }
    }
    for (k, list) in [
        ("seccomp_allow", &r.seccomp_allow),
        ("seccomp_deny", &r.seccomp_deny),
    ] {
        if !list.is_empty() {
            t.insert(
                k.into(),
                toml::Value::Array(list.iter().map(|(n, _)| s(n)).collect()),
            );
        }
    }
    for (k, ports) in [("tcp_bind", &r.tcp_bind), ("tcp_connect", &r.tcp_connect)] {
        if let Some(ports) = ports {
            t.insert(
                k.into(),
                toml::Value::Array(
                    ports
                        .iter()
                        .map(|p| toml::Value::Integer(i64::from(*p)))
                        .collect(),
                ),
            );
        }
    }
    for (k, v) in [("uid", r.uid), ("gid", r.gid)] {
        if let Some(v) = v {
            t.insert(k.into(), toml::Value::Integer(v.into()));
        }
    }
    t
}

/// The compiled mounts as `[[mount]]` tables, and the masks as the `mask` list.
fn mount_tables(c: &crate::plan::Compiled) -> (Vec<toml::Value>, Vec<toml::Value>) {
    let mut mounts = Vec::new();
    let mut masks = Vec::new();
    for m in &c.mounts {
        let created = matches!(&m.op, MountOp::Bind { src, .. } if c.create.contains(src));
        match m.op.profile_form(created) {
            ProfileForm::Mount(t) => mounts.push(toml::Value::Table(t)),
            ProfileForm::Mask(dst) => masks.push(dst),
        }
    }
    (mounts, masks)
}

/// `[env]`: what is kept, set and unset.
fn env_table(r: &Resolved) -> Option<toml::Table> {
    let s = text;
    if r.env_keep.is_empty() && r.env_ops.is_empty() {
        return None;
    }
    let mut env = toml::Table::new();
    if !r.env_keep.is_empty() {
        env.insert(
            "keep".into(),
            toml::Value::Array(r.env_keep.iter().map(|k| s(k)).collect()),
        );
    }
    let mut set = toml::Table::new();
    let mut unset = Vec::new();
    for op in &r.env_ops {
        match op {
            profile::EnvOp::Set(k, v) => {
                set.insert(k.clone(), s(v));
            }
            profile::EnvOp::Unset(k) => unset.push(s(k)),
        }
    }
    if !set.is_empty() {
        env.insert("set".into(), toml::Value::Table(set));
    }
    if !unset.is_empty() {
        env.insert("unset".into(), toml::Value::Array(unset));
    }
    Some(env)
}

/// `[limits]`: the rlimits and cgroup ceilings.
fn limits_table(r: &Resolved) -> Option<toml::Table> {
    let s = text;
    let limits = crate::plan::profile_rlimits(r).ok()?;
    let mut lt: toml::Table = limits
        .into_iter()
        .map(|(k, v)| (k, toml::Value::Integer(v as i64)))
        .collect();
    if let Ok(req) = crate::plan::limits::profile_request(r) {
        if let Some(m) = req.memory {
            lt.insert("memory".into(), toml::Value::Integer(m as i64));
        }
        if let Some(c) = req.cpus {
            lt.insert("cpus".into(), toml::Value::Float(c));
        }
        if let Some(p) = req.pids {
            lt.insert("pids".into(), toml::Value::Integer(p as i64));
        }
    }
    if let Some(mode) = r.limits.cgroup {
        lt.insert(
            "cgroup".into(),
            toml::Value::try_from(mode).unwrap_or_else(|_| s("required")),
        );
    }
    (!lt.is_empty()).then_some(lt)
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

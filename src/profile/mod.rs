//! TOML security profiles: finding them, reading them, and resolving includes into
//! one [`Resolved`] profile. Turning that into mount ops and process settings is
//! `plan`'s job, so one executor serves profiles and command-line options alike.
//!
//! Merge rules (also in `man/sbx-profile.5`): a profile's includes are read first,
//! depth-first in the order listed, then the profile itself. A profile reached twice
//! is read once. Mount entries and masks are concatenated in that order; `env.keep`
//! lists are joined; `env.set`/`env.unset` are applied in that order; every scalar
//! (`hostname`, `cwd`, `net`, `ids`, `uid`, `gid`, `seccomp`, `landlock`, `vcs`, each rlimit) takes the
//! last value set, so a profile overrides what it includes.

pub mod schema;
pub mod vars;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use schema::{
    IdMode, LandlockMode, Limits, MountEntry, NetMode, ProfileFile, SeccompMode, VcsMode,
    SCHEMA_VERSION,
};

/// Includes nest at most this deep.
pub const MAX_DEPTH: usize = 16;

/// The profiles built into the binary, from `profiles/`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("system", include_str!("../../profiles/system.toml")),
    ("home-masks", include_str!("../../profiles/home-masks.toml")),
    ("minimal", include_str!("../../profiles/minimal.toml")),
    ("default", include_str!("../../profiles/default.toml")),
    ("shell", include_str!("../../profiles/shell.toml")),
    ("dev", include_str!("../../profiles/dev.toml")),
    ("ci", include_str!("../../profiles/ci.toml")),
    ("untrusted", include_str!("../../profiles/untrusted.toml")),
    ("browser", include_str!("../../profiles/browser.toml")),
    ("empty-home", include_str!("../../profiles/empty-home.toml")),
    ("fonts", include_str!("../../profiles/fonts.toml")),
    ("x11", include_str!("../../profiles/x11.toml")),
    ("wayland", include_str!("../../profiles/wayland.toml")),
    ("pulseaudio", include_str!("../../profiles/pulseaudio.toml")),
    ("pipewire", include_str!("../../profiles/pipewire.toml")),
    ("dri", include_str!("../../profiles/dri.toml")),
    ("dbus", include_str!("../../profiles/dbus.toml")),
    ("nesting", include_str!("../../profiles/nesting.toml")),
    ("nested", include_str!("../../profiles/nested.toml")),
];

/// A place in a profile file, for messages: `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

pub fn loc_at(file: &str, text: &str, offset: usize) -> Loc {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    Loc {
        file: file.to_string(),
        line,
        col,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `$XDG_CONFIG_HOME/sbx/profiles`
    User,
    /// `/etc/sbx/profiles`
    System,
    Builtin,
    /// Named by path on the command line or in an include.
    Path,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::User => "user",
            Origin::System => "system",
            Origin::Builtin => "built-in",
            Origin::Path => "path",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub origin: Origin,
    /// The file's path, or `builtin:NAME`.
    pub display: String,
    /// The directory it was read from (none for built-ins).
    pub dir: Option<PathBuf>,
    pub text: String,
}

/// Where profiles are looked up by name, in order, before the built-ins.
#[derive(Debug, Clone)]
pub struct Locations {
    pub user: PathBuf,
    pub system: PathBuf,
}

impl Locations {
    pub fn new(xdg_config_home: &Path) -> Locations {
        Locations {
            user: xdg_config_home.join("sbx/profiles"),
            system: PathBuf::from("/etc/sbx/profiles"),
        }
    }

    /// Locations that hold nothing: only the built-ins are found.
    pub fn none() -> Locations {
        Locations {
            user: PathBuf::from("/nonexistent/sbx/user"),
            system: PathBuf::from("/nonexistent/sbx/system"),
        }
    }

    pub fn dirs(&self) -> [&Path; 2] {
        [&self.user, &self.system]
    }
}

pub fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".toml")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Find a profile: a path (contains `/` or ends in `.toml`, relative to `base`),
/// `builtin:NAME`, or a NAME searched in the user's, the system's, then the built-ins.
pub fn find(spec: &str, locs: &Locations, base: Option<&Path>) -> Result<Source, String> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return builtin(name).ok_or_else(|| format!("no built-in profile {name:?}"));
    }
    if is_path(spec) {
        let p = match base {
            Some(b) if Path::new(spec).is_relative() => b.join(spec),
            _ => PathBuf::from(spec),
        };
        let text = read_profile(&p)?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Source {
            name,
            origin: Origin::Path,
            display: p.display().to_string(),
            dir: p.parent().map(Path::to_path_buf),
            text,
        });
    }
    if !valid_name(spec) {
        return Err(format!(
            "{spec:?} is not a profile name (letters, digits, `-`, `_`, `.`)"
        ));
    }
    for (dir, origin) in [(&locs.user, Origin::User), (&locs.system, Origin::System)] {
        let p = dir.join(format!("{spec}.toml"));
        match std::fs::metadata(&p).map(|_| read_profile(&p)) {
            Ok(Err(e)) => return Err(e),
            Ok(Ok(text)) => {
                return Ok(Source {
                    name: spec.to_string(),
                    origin,
                    display: p.display().to_string(),
                    dir: Some(dir.clone()),
                    text,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read profile {}: {e}", p.display())),
        }
    }
    builtin(spec).ok_or_else(|| {
        format!(
            "no profile {spec:?} in {}, {} or the built-ins ({})",
            locs.user.display(),
            locs.system.display(),
            BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Profiles are small text files: a device, a FIFO or anything over 1 MiB is refused
/// (`include = ["/dev/zero"]` must not eat the machine's memory).
pub const MAX_PROFILE_SIZE: u64 = 1 << 20;

pub fn read_profile(p: &Path) -> Result<String, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(p).map_err(|e| format!("cannot read profile {}: {e}", p.display()))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read profile {}: {e}", p.display()))?;
    if !m.is_file() {
        return Err(format!("profile {} is not a regular file", p.display()));
    }
    if m.len() > MAX_PROFILE_SIZE {
        return Err(format!("profile {} is larger than 1 MiB", p.display()));
    }
    let mut text = String::new();
    f.take(MAX_PROFILE_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read profile {}: {e}", p.display()))?;
    Ok(text)
}

pub fn builtin(name: &str) -> Option<Source> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Source {
            name: n.to_string(),
            origin: Origin::Builtin,
            display: format!("builtin:{n}"),
            dir: None,
            text: text.to_string(),
        })
}

/// Parse one file; errors carry `file:line:column`.
pub fn parse(src: &Source) -> Result<ProfileFile, Error> {
    let file: ProfileFile = toml::from_str(&src.text).map_err(|e| {
        let loc = e.span().map(|s| loc_at(&src.display, &src.text, s.start));
        let msg = e.message().trim().to_string();
        let msg = match suggestion(&msg) {
            Some(s) => format!("{msg} (did you mean `{s}`?)"),
            None => msg,
        };
        match loc {
            Some(l) => Error::new(l.to_string(), msg),
            None => Error::new(src.display.clone(), msg),
        }
    })?;
    if *file.version.get_ref() != SCHEMA_VERSION {
        let l = loc_at(&src.display, &src.text, file.version.span().start);
        return Err(Error::new(
            l.to_string(),
            format!(
                "version {} is not supported (this sbx reads version {SCHEMA_VERSION})",
                file.version.get_ref()
            ),
        ));
    }
    Ok(file)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the closest expected key.
fn suggestion(msg: &str) -> Option<String> {
    let unknown = msg.strip_prefix("unknown field `")?.split('`').next()?;
    let expected = msg.split("expected").nth(1)?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (distance(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.to_string())
}

/// Levenshtein distance, for key suggestions.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOp {
    Set(String, String),
    Unset(String),
}

/// One profile with its includes merged in (variables not yet substituted).
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub name: String,
    pub description: Option<String>,
    /// Every file read, in merge order.
    pub files: Vec<String>,
    /// Directories profiles were read from: the sandbox may never write to them.
    pub dirs: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub cwd: Option<(String, Loc)>,
    pub net: Option<NetMode>,
    pub ids: Option<IdMode>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub seccomp: Option<SeccompMode>,
    pub landlock: Option<LandlockMode>,
    pub vcs: Option<VcsMode>,
    /// tcp_bind and tcp_connect, joined in merge order (None: never set).
    pub tcp_bind: Option<Vec<u16>>,
    pub tcp_connect: Option<Vec<u16>>,
    /// seccomp_allow and seccomp_deny, joined in merge order.
    pub seccomp_allow: Vec<(String, Loc)>,
    pub seccomp_deny: Vec<(String, Loc)>,
    pub mounts: Vec<(MountEntry, Loc)>,
    pub masks: Vec<(String, Loc)>,
    pub env_keep: Vec<String>,
    pub env_ops: Vec<EnvOp>,
    pub limits: Limits,
    /// `[dbus]` from any profile merged: (own, talk); None: no session bus.
    pub dbus: Option<(Vec<String>, Vec<String>)>,
    /// Where the last value of a scalar key was set (`hostname`, `ids`, `limits`), for
    /// errors found once the whole plan is built.
    pub key_locs: std::collections::BTreeMap<&'static str, Loc>,
}

impl Resolved {
    /// "file:line:col: key" where `key` was set, else "profile NAME: key".
    pub fn where_set(&self, key: &'static str) -> String {
        match self.key_locs.get(key) {
            Some(l) => format!("{l}: {key}"),
            None => format!("profile {}: {key}", self.name),
        }
    }
}

/// Read profile `spec` and everything it includes.
pub fn resolve(spec: &str, locs: &Locations, cwd: Option<&Path>) -> Result<Resolved, Error> {
    let src = find(spec, locs, cwd).map_err(|e| Error::new("--profile", e))?;
    let mut out = Resolved {
        name: src.name.clone(),
        ..Default::default()
    };
    let mut seen = BTreeSet::new();
    visit(src, locs, &mut Vec::new(), &mut seen, &mut out)?;
    Ok(out)
}

/// Resolve a profile given as text; its includes are found among the built-ins only.
/// For the fuzz target and `--check-profile`-like checks of untrusted text.
pub fn resolve_text(text: &str) -> Result<Resolved, Error> {
    let src = Source {
        name: "text".into(),
        origin: Origin::Path,
        display: "<text>".into(),
        dir: None,
        text: text.to_string(),
    };
    let mut out = Resolved {
        name: src.name.clone(),
        ..Default::default()
    };
    visit(
        src,
        &Locations::none(),
        &mut Vec::new(),
        &mut BTreeSet::new(),
        &mut out,
    )?;
    Ok(out)
}

fn visit(
    src: Source,
    locs: &Locations,
    stack: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
    out: &mut Resolved,
) -> Result<(), Error> {
    if stack.contains(&src.display) {
        stack.push(src.display.clone());
        return Err(Error::new(
            "profile include",
            format!("include cycle: {}", stack.join(" -> ")),
        ));
    }
    if stack.len() > MAX_DEPTH {
        stack.push(src.display.clone());
        return Err(Error::new(
            "profile include",
            format!(
                "includes nest deeper than {MAX_DEPTH}: {}",
                stack.join(" -> ")
            ),
        ));
    }
    // Read once, however it is spelled (a.toml, ./a.toml, a symlink to it).
    let key = match src.origin {
        Origin::Builtin => src.display.clone(),
        _ => std::fs::canonicalize(&src.display)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| src.display.clone()),
    };
    if !seen.insert(key) {
        return Ok(());
    }
    let file = parse(&src)?;
    stack.push(src.display.clone());
    for inc in &file.include {
        let l = loc_at(&src.display, &src.text, inc.span().start);
        let child = find(inc.get_ref(), locs, src.dir.as_deref())
            .map_err(|e| Error::new(l.to_string(), format!("include {:?}: {e}", inc.get_ref())))?;
        // A cycle or a chain too deep is reported at the include that closes it.
        visit(child, locs, stack, seen, out).map_err(|e| match e.step.as_str() {
            "profile include" => Error::new(l.to_string(), e.detail),
            _ => e,
        })?;
    }
    stack.pop();
    merge(&src, file, out);
    Ok(())
}

fn merge(src: &Source, f: ProfileFile, out: &mut Resolved) {
    let at = |offset: usize| loc_at(&src.display, &src.text, offset);
    out.files.push(src.display.clone());
    // Protected: the directory it was found in, and the one it really lives in (a
    // profile may be a symlink into a dotfiles directory).
    let real_dir = std::fs::canonicalize(&src.display)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    for d in src.dir.iter().chain(real_dir.iter()) {
        if !out.dirs.contains(d) {
            out.dirs.push(d.clone());
        }
    }
    // The profile's own description (merged last, the including profile's wins even
    // when it has none).
    out.description = f.description;
    if let Some(h) = f.hostname {
        out.key_locs.insert("hostname", at(h.span().start));
        out.hostname = Some(h.into_inner());
    }
    if let Some(c) = f.cwd {
        out.cwd = Some((c.get_ref().clone(), at(c.span().start)));
    }
    out.net = f.net.or(out.net);
    if let Some(ids) = f.ids {
        out.key_locs.insert("ids", at(ids.span().start));
        out.ids = Some(ids.into_inner());
    }
    out.uid = f.uid.or(out.uid);
    out.gid = f.gid.or(out.gid);
    if let Some(s) = f.seccomp {
        out.key_locs.insert("seccomp", at(s.span().start));
        out.seccomp = Some(s.into_inner());
    }
    if let Some(l) = f.landlock {
        out.key_locs.insert("landlock", at(l.span().start));
        out.landlock = Some(l.into_inner());
    }
    if let Some(v) = f.vcs {
        out.key_locs.insert("vcs", at(v.span().start));
        out.vcs = Some(v.into_inner());
    }
    for (list, ports) in [
        (&mut out.tcp_bind, f.tcp_bind),
        (&mut out.tcp_connect, f.tcp_connect),
    ] {
        if let Some(ports) = ports {
            let l = list.get_or_insert_with(Vec::new);
            for p in ports {
                if !l.contains(p.get_ref()) {
                    l.push(p.into_inner());
                }
            }
        }
    }
    for a in f.seccomp_allow {
        let l = at(a.span().start);
        out.seccomp_allow.push((a.into_inner(), l));
    }
    for d in f.seccomp_deny {
        let l = at(d.span().start);
        out.seccomp_deny.push((d.into_inner(), l));
    }
    for m in f.mount {
        let l = at(m.span().start);
        out.mounts.push((m.into_inner(), l));
    }
    for m in f.mask {
        let l = at(m.span().start);
        out.masks.push((m.into_inner(), l));
    }
    merge_dbus(out, f.dbus);
    merge_env(out, f.env);
    if let Some(r) = f.limits {
        out.key_locs.insert("limits", at(r.span().start));
        merge_limits(&mut out.limits, r.into_inner());
    }
}

/// `[dbus]`: the names of every file, once each.
fn merge_dbus(out: &mut Resolved, dbus: Option<schema::DbusTable>) {
    if let Some(d) = dbus {
        let (own, talk) = out.dbus.get_or_insert_with(Default::default);
        for (list, add) in [(own, d.own), (talk, d.talk)] {
            for n in add {
                if !list.contains(&n) {
                    list.push(n);
                }
            }
        }
    }
}

/// `[env]`: kept names once each; set and unset in order.
fn merge_env(out: &mut Resolved, env: Option<schema::EnvTable>) {
    if let Some(env) = env {
        for k in env.keep {
            if !out.env_keep.contains(&k) {
                out.env_keep.push(k);
            }
        }
        out.env_ops
            .extend(env.set.into_iter().map(|(k, v)| EnvOp::Set(k, v)));
        out.env_ops.extend(env.unset.into_iter().map(EnvOp::Unset));
    }
}

/// `[limits]`: each key the later file sets wins.
fn merge_limits(o: &mut schema::Limits, r: schema::Limits) {
    o.nofile = r.nofile.or(o.nofile);
    o.nproc = r.nproc.or(o.nproc);
    o.fsize = r.fsize.or(o.fsize.take());
    o.address_space = r.address_space.or(o.address_space.take());
    o.core = r.core.or(o.core.take());
    o.cpu = r.cpu.or(o.cpu);
    o.stack = r.stack.or(o.stack.take());
    o.memlock = r.memlock.or(o.memlock.take());
    o.memory = r.memory.or(o.memory.take());
    o.cpus = r.cpus.or(o.cpus);
    o.pids = r.pids.or(o.pids);
    o.cgroup = r.cgroup.or(o.cgroup);
}

#[cfg(test)]
mod tests;

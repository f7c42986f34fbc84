//! A resolved profile's mount entries and masks, turned into the plan's mount ops.
//! Every entry is checked here, against the host, as the user; all errors are
//! collected (so `--check-profile` reports them all), each naming file:line:column.

use std::path::{Path, PathBuf};

use super::trust::Unresolved;
use super::{lexical_abs, sandbox_path, Access, Mount, MountOp, SHM_SIZE, TMPFS_SIZE};
use crate::error::Error;
use crate::host::{Entry, Host, HostFs};
use crate::profile::schema::{MountEntry, MountKind, Size};
use crate::profile::vars::{expand, ExpandError, Vars};
use crate::profile::{Loc, Resolved};

/// Sizes above this are taken for a typo.
const MAX_SIZE: u64 = 1 << 40;

pub struct Compiled {
    pub mounts: Vec<Mount>,
    pub notices: Vec<String>,
    /// Optional entries refused for safety (a planted symlink): said even with -q.
    pub warnings: Vec<String>,
    /// Bind sources to make before the launch (`create = true`, missing here).
    pub create: Vec<PathBuf>,
    /// Optional entries that do not apply on this host (`-v` lists them).
    pub skipped: Vec<String>,
}

pub fn parse_size(s: &Size) -> Result<u64, String> {
    let n = match s {
        Size::Bytes(n) => *n,
        Size::Text(t) => {
            let t = t.trim();
            let (num, mult) = match t.char_indices().last() {
                Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
                Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
                Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
                Some((i, 'T' | 't')) => (&t[..i], 1 << 40),
                _ => (t, 1),
            };
            let v: u64 = num
                .parse()
                .map_err(|_| format!("size {t:?} is not a number with K, M, G or T"))?;
            v.checked_mul(mult)
                .ok_or_else(|| format!("size {t:?} overflows"))?
        }
    };
    if n == 0 || n > MAX_SIZE {
        return Err(format!("size {n} is out of range (1 byte to 1 TiB)"));
    }
    Ok(n)
}

pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("mode {s:?} is not an octal mode like \"0755\""))
}

fn kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Mirror => "mirror",
        MountKind::RoBind => "ro-bind",
        MountKind::Bind => "bind",
        MountKind::DevBind => "dev-bind",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Dir => "dir",
        MountKind::File => "file",
        MountKind::Symlink => "symlink",
        MountKind::Proc => "proc",
        MountKind::Dev => "dev",
        MountKind::Mqueue => "mqueue",
        MountKind::TmpOverlay => "tmp-overlay",
        MountKind::Xauthority => "xauthority",
    }
}

/// Which keys each kind accepts besides `type` and `optional`.
fn allowed(k: MountKind) -> &'static [&'static str] {
    match k {
        MountKind::Mirror => &["src"],
        MountKind::Bind => &["src", "dst", "skip_if_home_or_above", "create"],
        MountKind::RoBind | MountKind::DevBind => &["src", "dst", "skip_if_home_or_above"],
        MountKind::Tmpfs => &["dst", "size", "mode"],
        MountKind::Dir => &["dst", "mode"],
        MountKind::File => &["dst", "content", "mode"],
        MountKind::Symlink => &["target", "dst"],
        MountKind::Proc => &["dst", "hide_host_entries"],
        MountKind::Mqueue => &["dst"],
        MountKind::TmpOverlay => &["src", "dst", "size", "skip_if_home_or_above"],
        MountKind::Dev => &["dst", "size"],
        MountKind::Xauthority => &["src", "dst"],
    }
}

fn present(e: &MountEntry) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut add = |set: bool, k: &'static str| {
        if set {
            v.push(k);
        }
    };
    add(e.src.is_some(), "src");
    add(e.dst.is_some(), "dst");
    add(e.size.is_some(), "size");
    add(e.mode.is_some(), "mode");
    add(e.content.is_some(), "content");
    add(e.target.is_some(), "target");
    add(e.skip_if_home_or_above, "skip_if_home_or_above");
    add(e.hide_host_entries.is_some(), "hide_host_entries");
    add(e.create, "create");
    v
}

/// The entries of an Xauthority file (libXau's format: family, then address, display
/// number, auth name and auth data, each a big-endian u16 length and bytes) for
/// display `display`, rewritten to FamilyWild with no address: inside, the hostname
/// is the sandbox's, which a host-specific entry would not match.
pub fn xauth_for_display(data: &[u8], display: &str) -> Result<Vec<u8>, String> {
    const FAMILY_WILD: u16 = 0xFFFF;
    let mut out = Vec::new();
    let mut i = 0;
    let field = |i: &mut usize| -> Result<&[u8], String> {
        let len = data
            .get(*i..*i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or("truncated Xauthority entry")?;
        let v = data
            .get(*i + 2..*i + 2 + len)
            .ok_or("truncated Xauthority entry")?;
        *i += 2 + len;
        Ok(v)
    };
    while i < data.len() {
        if data.len() < i + 2 {
            return Err("truncated Xauthority entry".into());
        }
        i += 2; // family
        let _address = field(&mut i)?;
        let number = field(&mut i)?;
        let name = field(&mut i)?;
        let cookie = field(&mut i)?;
        if number == display.as_bytes() {
            out.extend_from_slice(&FAMILY_WILD.to_be_bytes());
            for f in [&b""[..], number, name, cookie] {
                out.extend_from_slice(&(f.len() as u16).to_be_bytes());
                out.extend_from_slice(f);
            }
        }
    }
    Ok(out)
}

/// The outcome of expanding one path: a value, or skip (optional entry, unset variable).
enum Expanded {
    Value(String),
    Skip,
}

fn expand_opt(s: &str, optional: bool, vars: &Vars) -> Result<Expanded, String> {
    if s.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    match expand(s, vars) {
        Ok(v) => Ok(Expanded::Value(v)),
        Err(ExpandError::Unset(_)) if optional => Ok(Expanded::Skip),
        Err(e) => Err(e.to_string()),
    }
}

pub fn compile(
    r: &Resolved,
    host: &Host,
    fs: &dyn HostFs,
    vars: &Vars,
) -> Result<Compiled, Vec<Error>> {
    let mut out = Compiled {
        mounts: Vec::new(),
        notices: Vec::new(),
        warnings: Vec::new(),
        create: Vec::new(),
        skipped: Vec::new(),
    };
    let mut errors = Vec::new();
    for (entry, loc) in &r.mounts {
        let mut said = Said {
            notices: &mut out.notices,
            warnings: &mut out.warnings,
            create: &mut out.create,
        };
        match entry_op(entry, loc, host, fs, vars, &mut said) {
            Ok(Some(op)) => out.mounts.push(Mount {
                origin: format!("{loc} ({})", kind_name(entry.kind)),
                op,
            }),
            Ok(None) => out.skipped.push(format!(
                "{loc} ({}{}): optional, nothing here to grant",
                kind_name(entry.kind),
                entry
                    .src
                    .as_deref()
                    .or(entry.dst.as_deref())
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default()
            )),
            Err(msg) => errors.push(Error::new(
                loc.to_string(),
                format!("{}: {msg}", kind_name(entry.kind)),
            )),
        }
    }
    // Masks come after every mount of the profile, so they hide paths inside any
    // granted tree whatever the order of the entries.
    let masks = masks(r, fs, vars, &out.mounts, &mut errors);
    out.mounts.extend(masks);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The profile's masks, each also where a bind shows what it hides: with $HOME
/// reached through a symlink, the current directory (resolved by getcwd) may be
/// ~/.ssh at its real path.
fn masks(
    r: &Resolved,
    fs: &dyn HostFs,
    vars: &Vars,
    mounts: &[Mount],
    errors: &mut Vec<Error>,
) -> Vec<Mount> {
    let mut out = Vec::new();
    let binds: Vec<(PathBuf, PathBuf)> = mounts
        .iter()
        .filter_map(|m| match &m.op {
            MountOp::Bind { src, dst, .. } => Some((src.clone(), dst.clone())),
            _ => None,
        })
        .collect();
    let mut placed = std::collections::BTreeSet::new();
    for (mask, loc) in &r.masks {
        let path = match expand_opt(mask, true, vars) {
            Ok(Expanded::Value(p)) => p,
            Ok(Expanded::Skip) => continue,
            Err(msg) => {
                errors.push(Error::new(loc.to_string(), format!("mask: {msg}")));
                continue;
            }
        };
        let dst = match sandbox_path(path.as_ref(), "mask") {
            Ok(d) => d,
            Err(e) => {
                errors.push(Error::new(loc.to_string(), e.detail));
                continue;
            }
        };
        // Where else a bind shows it: only a secret that exists on the host can be
        // shown elsewhere (one lstat for the many masks of paths a host lacks).
        let seen_through: Vec<PathBuf> = match fs.entry(&dst) {
            Entry::Missing => Vec::new(),
            _ => {
                let real = super::trust::resolve_lenient(fs, &dst);
                binds
                    .iter()
                    .filter_map(|(src, bdst)| {
                        real.strip_prefix(src).ok().map(|rest| bdst.join(rest))
                    })
                    .collect()
            }
        };
        for d in std::iter::once(dst).chain(seen_through) {
            if placed.insert(d.clone()) {
                out.push(Mount {
                    op: MountOp::Mask { dst: d },
                    origin: format!("{loc} (mask)"),
                });
            }
        }
    }
    out
}

/// Where an entry's notices and warnings go.
struct Said<'a> {
    notices: &'a mut Vec<String>,
    warnings: &'a mut Vec<String>,
    create: &'a mut Vec<PathBuf>,
}

/// Places shared with other programs and users, and the directories above them: never
/// granted by an entry marked `skip_if_home_or_above` (the current directory's grant).
/// `/tmp` holds the ssh-agent's and X11's sockets, `/run` and `$XDG_RUNTIME_DIR` every
/// session service's, `/dev/shm` other programs' shared memory.
const SHARED_PLACES: [&str; 9] = [
    "/tmp", "/var/tmp", "/dev/shm", "/dev", "/run", "/var/run", "/home", "/proc", "/sys",
];

/// Why `real` may not be the current directory's grant, if it may not.
fn shared_place(real: &Path, host: &Host, fs: &dyn HostFs, vars: &Vars) -> Option<String> {
    if host.home_real.starts_with(real) || host.home.starts_with(real) {
        return Some("it is $HOME or a directory above it".into());
    }
    let runtime = vars.0.get("XDG_RUNTIME_DIR").map(PathBuf::from);
    let under_runtime = runtime.as_deref().is_some_and(|r| real.starts_with(r))
        || real.starts_with("/run")
        || real.starts_with("/var/run");
    if under_runtime {
        return Some("it is in the runtime directory, where session services listen".into());
    }
    // The shell reached the current directory through a user's link that leads
    // from one place of the home to another (`proj/build -> ~/bin`, `-> ~/.config/
    // autostart`): an earlier sandbox could have planted it, so it is not granted on
    // the strength of a `cd`. A link within its own directory, or out of the home
    // (`~/work -> /data/work`), is the user's layout.
    if let Some((link, owner)) = host
        .cwd_via
        .as_ref()
        .filter(|_| host.cwd.as_deref() == Some(real))
    {
        let within = link.parent().is_some_and(|d| real.starts_with(d));
        if real.starts_with(&host.home_real) && !within {
            return Some(format!(
                "you reached it through the symlink {} (owned by {}), which leads elsewhere \
                 in your home and which a sandbox could have planted; cd there by its real \
                 path if you mean it",
                link.display(),
                owner.map_or("nobody known".to_string(), |u| format!("uid {u}"))
            ));
        }
    }
    if let Some(p) = SHARED_PLACES.iter().find(|p| real == Path::new(p)) {
        return Some(format!("{p} is shared with other programs and users"));
    }
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|v| real.starts_with(v))
    {
        return Some(
            "it is in a virtual filesystem (the sandbox has its own /proc and /dev)".into(),
        );
    }
    // Below a shared place, a directory that holds another program's socket (the
    // ssh-agent's /tmp/ssh-*, /tmp/.X11-unix) would hand that program to the sandbox.
    if SHARED_PLACES.iter().any(|p| real.starts_with(p)) {
        if let Some(sock) = fs.sockets_in(real).first() {
            return Some(format!(
                "it holds the socket {} of another program",
                real.join(sock).display()
            ));
        }
    }
    None
}

/// What one entry is compiled against.
struct Cx<'a> {
    e: &'a MountEntry,
    loc: &'a Loc,
    host: &'a Host,
    fs: &'a dyn HostFs,
    vars: &'a Vars,
}

impl Cx<'_> {
    fn need(&self, v: &Option<String>, key: &str) -> Result<String, String> {
        v.clone().ok_or_else(|| format!("`{key}` is required"))
    }

    /// The `src` after substitution; None: skipped (optional, variable unset).
    fn src(&self) -> Result<Option<String>, String> {
        match expand_opt(&self.need(&self.e.src, "src")?, self.e.optional, self.vars)? {
            Expanded::Value(s) => Ok(Some(s)),
            Expanded::Skip => Ok(None),
        }
    }

    /// A destination inside the sandbox, after substitution.
    fn dst_of(&self, v: &str) -> Result<Option<PathBuf>, String> {
        match expand_opt(v, self.e.optional, self.vars)? {
            Expanded::Value(p) => sandbox_path(p.as_ref(), "dst")
                .map(Some)
                .map_err(|e| e.detail),
            Expanded::Skip => Ok(None),
        }
    }

    fn default_dst(&self, d: &str) -> Result<Option<PathBuf>, String> {
        self.dst_of(self.e.dst.as_deref().unwrap_or(d))
    }

    /// A refusal of the trust rule for an entry that can do without its grant: said,
    /// and the entry dropped.
    fn dropped<T>(&self, said: &mut Said, why: &Unresolved, src: &str) -> Option<T> {
        said.warnings.push(format!(
            "{} ({}): {}",
            self.loc,
            kind_name(self.e.kind),
            why.describe(src)
        ));
        None
    }
}

fn entry_op(
    e: &MountEntry,
    loc: &Loc,
    host: &Host,
    fs: &dyn HostFs,
    vars: &Vars,
    said: &mut Said,
) -> Result<Option<MountOp>, String> {
    let ok = allowed(e.kind);
    if let Some(k) = present(e).into_iter().find(|k| !ok.contains(k)) {
        return Err(format!(
            "`{k}` does not apply here (this type takes: {})",
            ok.join(", ")
        ));
    }
    let cx = Cx {
        e,
        loc,
        host,
        fs,
        vars,
    };
    let default_dst = |d: &str| cx.default_dst(d);
    let mode = |default: u32| e.mode.as_deref().map(parse_mode).unwrap_or(Ok(default));
    let size = |default: u64| e.size.as_ref().map(parse_size).unwrap_or(Ok(default));
    let op = match e.kind {
        MountKind::Mirror => mirror_op(&cx)?,
        MountKind::RoBind | MountKind::Bind | MountKind::DevBind | MountKind::TmpOverlay => {
            bind_op(&cx, said)?
        }
        MountKind::Tmpfs => default_dst_required(e, &default_dst)?.map(|dst| MountOp::Tmpfs {
            dst,
            size: 0,
            mode: 0,
        }),
        MountKind::Dir => {
            default_dst_required(e, &default_dst)?.map(|dst| MountOp::Dir { dst, mode: 0 })
        }
        MountKind::Xauthority => xauthority_op(&cx, said)?,
        MountKind::File => default_dst_required(e, &default_dst)?.map(|dst| MountOp::File {
            dst,
            content: e.content.clone().unwrap_or_default().into_bytes(),
            mode: 0,
        }),
        MountKind::Symlink => {
            let target = cx.need(&e.target, "target")?;
            let target = match expand_opt(&target, e.optional, vars)? {
                Expanded::Value(t) => PathBuf::from(t),
                Expanded::Skip => return Ok(None),
            };
            default_dst_required(e, &default_dst)?.map(|link| MountOp::Symlink { target, link })
        }
        MountKind::Proc => default_dst("/proc")?.map(|dst| MountOp::Proc {
            dst,
            hide_host: e.hide_host_entries.unwrap_or(true),
        }),
        MountKind::Dev => default_dst("/dev")?.map(|dst| MountOp::Dev { dst, shm_size: 0 }),
        MountKind::Mqueue => default_dst("/dev/mqueue")?.map(|dst| MountOp::Mqueue { dst }),
    };
    op.map(|op| with_numbers(op, &mode, &size)).transpose()
}

/// `mirror`: a host directory at the same path read-only, or the host's symlink
/// repeated (merged /usr).
fn mirror_op(cx: &Cx) -> Result<Option<MountOp>, String> {
    let Some(src) = cx.src()?.map(PathBuf::from) else {
        return Ok(None);
    };
    let dst = sandbox_path(src.as_os_str(), "src").map_err(|e| e.detail)?;
    Ok(match cx.fs.entry(&src) {
        Entry::Symlink(target) => Some(MountOp::Symlink { target, link: dst }),
        Entry::Dir => Some(MountOp::Bind {
            src,
            dst,
            access: Access::ReadOnly,
        }),
        _ => None,
    })
}

/// The bind kinds and tmp-overlay: the source resolved by the trust rule (made
/// where the entry says so), then its place inside.
fn bind_op(cx: &Cx, said: &mut Said) -> Result<Option<MountOp>, String> {
    let e = cx.e;
    let Some(src) = cx.src()? else {
        return Ok(None);
    };
    let Some(real) = bind_source(cx, said, &src)? else {
        return Ok(None);
    };
    if e.skip_if_home_or_above {
        if let Some(why) = shared_place(&real, cx.host, cx.fs, cx.vars) {
            said.notices.push(format!(
                "not binding {}: {why} ({})",
                real.display(),
                cx.loc
            ));
            return Ok(None);
        }
    }
    let dst = match &e.dst {
        Some(d) => match cx.dst_of(d)? {
            Some(d) => d,
            None => return Ok(None),
        },
        None => lexical_abs(src.as_ref(), cx.host.cwd.as_deref()),
    };
    let access = match e.kind {
        MountKind::RoBind => Access::ReadOnly,
        MountKind::Bind => Access::ReadWrite,
        MountKind::DevBind => Access::Device,
        // The size is filled in (and checked) by `with_numbers`.
        _ => {
            return Ok(Some(MountOp::TmpOverlay {
                src: real,
                dst,
                size: 0,
            }))
        }
    };
    Ok(Some(MountOp::Bind {
        src: real,
        dst,
        access,
    }))
}

/// Where a bind's source really is, by the trust rule; None: the entry is dropped.
fn bind_source(cx: &Cx, said: &mut Said, src: &str) -> Result<Option<PathBuf>, String> {
    let (e, fs, host) = (cx.e, cx.fs, cx.host);
    let not_found = |err: &std::io::Error| err.kind() == std::io::ErrorKind::NotFound;
    match super::trust::resolve_profile_path(fs, Path::new(src), host.cwd.as_deref()) {
        Ok(r) => Ok(Some(r)),
        // Missing and to be made: where the part that exists leads (by the same
        // rule), then the rest, which the launcher makes following no link.
        Err(Unresolved::Io(err)) if e.create && not_found(&err) => {
            match super::trust::resolve_for_create(fs, Path::new(src), &host.home_real) {
                Ok(p) => {
                    said.create.push(p.clone());
                    Ok(Some(p))
                }
                Err(why @ (Unresolved::Planted { .. } | Unresolved::Changed { .. })) => {
                    Ok(cx.dropped(said, &why, src))
                }
                Err(Unresolved::Io(err)) => Err(format!("source {src:?}: cannot be made: {err}")),
            }
        }
        Err(Unresolved::Io(err)) if e.optional && not_found(&err) => Ok(None),
        // An optional grant is dropped, loudly; a required one stops the launch. (An
        // entry that makes its source is optional in this sense too: its program
        // runs, without what a planted link would have handed it.)
        Err(why @ (Unresolved::Planted { .. } | Unresolved::Changed { .. }))
            if e.optional || e.create =>
        {
            Ok(cx.dropped(said, &why, src))
        }
        Err(why) => Err(why.describe(src)),
    }
}

/// `xauthority`: the cookies of this display only, from a file read by the trust
/// rule: a planted ~/.Xauthority -> ~/.ssh/id_ed25519 would otherwise hand the key's
/// bytes to the sandbox wherever they happened to parse as a cookie.
fn xauthority_op(cx: &Cx, said: &mut Said) -> Result<Option<MountOp>, String> {
    let e = cx.e;
    let Some(src) = cx.src()?.map(PathBuf::from) else {
        return Ok(None);
    };
    let Some(display) = cx.vars.0.get("X11_DISPLAY") else {
        return if e.optional {
            Ok(None)
        } else {
            Err("no local X11 display here ($DISPLAY is unset or remote)".into())
        };
    };
    let data = match super::trust::resolve_profile_path(cx.fs, &src, cx.host.cwd.as_deref())
        .and_then(|real| read_no_symlinks(&real).map_err(Unresolved::Io))
    {
        Ok(d) => d,
        Err(why @ (Unresolved::Planted { .. } | Unresolved::Changed { .. })) if e.optional => {
            return Ok(cx.dropped(said, &why, &src.to_string_lossy()));
        }
        Err(why @ (Unresolved::Planted { .. } | Unresolved::Changed { .. })) => {
            return Err(why.describe(&src.to_string_lossy()));
        }
        Err(_) if e.optional => return Ok(None),
        Err(Unresolved::Io(err)) => return Err(format!("src {}: {err}", src.display())),
    };
    let filtered =
        xauth_for_display(&data, display).map_err(|why| format!("src {}: {why}", src.display()))?;
    if filtered.is_empty() {
        said.notices.push(format!(
            "x11: {} holds no cookie for display :{display}: the sandbox gets none",
            src.display()
        ));
        return Ok(None);
    }
    Ok(
        default_dst_required(e, &|d| cx.default_dst(d))?.map(|dst| MountOp::File {
            dst,
            content: filtered,
            mode: 0o600,
        }),
    )
}

fn default_dst_required(
    e: &MountEntry,
    default_dst: &dyn Fn(&str) -> Result<Option<PathBuf>, String>,
) -> Result<Option<PathBuf>, String> {
    match &e.dst {
        Some(d) => default_dst(d),
        None => Err("`dst` is required".into()),
    }
}

/// Fill in the sizes and modes, with each kind's default.
fn with_numbers(
    op: MountOp,
    mode: &dyn Fn(u32) -> Result<u32, String>,
    size: &dyn Fn(u64) -> Result<u64, String>,
) -> Result<MountOp, String> {
    Ok(match op {
        MountOp::Tmpfs { dst, .. } => MountOp::Tmpfs {
            dst,
            size: size(TMPFS_SIZE)?,
            mode: mode(0o755)?,
        },
        MountOp::Dir { dst, .. } => MountOp::Dir {
            dst,
            mode: mode(0o755)?,
        },
        MountOp::File { dst, content, .. } => MountOp::File {
            dst,
            content,
            mode: mode(0o644)?,
        },
        MountOp::Dev { dst, .. } => MountOp::Dev {
            dst,
            shm_size: size(SHM_SIZE)?,
        },
        MountOp::TmpOverlay { src, dst, .. } => MountOp::TmpOverlay {
            src,
            dst,
            size: size(TMPFS_SIZE)?,
        },
        other => other,
    })
}

/// A file's content, opened with no symlink followed anywhere on its path.
fn read_no_symlinks(p: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let fd = crate::sys::open_no_symlinks(&crate::sys::cstr(p.as_os_str()), libc::O_RDONLY)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno))?;
    let mut data = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut data)?;
    Ok(data)
}

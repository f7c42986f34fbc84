//! Profile variables: a fixed allow-list, substituted as text and nothing more (no
//! command, no lookup beyond these values; hakoniwa's template engine could run code).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::host::Host;

pub const NAMES: &[&str] = &[
    "HOME",
    "USER",
    "UID",
    "GID",
    "CWD",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_DOWNLOAD_DIR",
    "WAYLAND_DISPLAY",
    "X11_DISPLAY",
    "XAUTHORITY",
];

/// The values for one invocation; a variable absent here is unset (e.g. no
/// XDG_RUNTIME_DIR), which fails a required entry and skips an optional one.
#[derive(Debug, Clone, Default)]
pub struct Vars(pub BTreeMap<&'static str, String>);

fn env<'a>(host: &'a Host, k: &str) -> Option<&'a str> {
    host.env
        .iter()
        .find(|(n, _)| n == k)
        .and_then(|(_, v)| v.to_str())
        .filter(|v| Path::new(v).is_absolute())
}

impl Vars {
    pub fn from_host(host: &Host) -> Vars {
        let home = host.home.to_string_lossy().into_owned();
        let mut m = BTreeMap::new();
        m.insert("HOME", home.clone());
        m.insert("USER", host.user.clone());
        m.insert("UID", host.uid.to_string());
        m.insert("GID", host.gid.to_string());
        if let Some(c) = &host.cwd {
            m.insert("CWD", c.to_string_lossy().into_owned());
        }
        if let Some(r) = env(host, "XDG_RUNTIME_DIR") {
            m.insert("XDG_RUNTIME_DIR", r.to_string());
        }
        let xdg = |k: &str, default: &str| {
            env(host, k)
                .map(str::to_string)
                .unwrap_or(format!("{home}/{default}"))
        };
        let config = xdg("XDG_CONFIG_HOME", ".config");
        m.insert("XDG_CACHE_HOME", xdg("XDG_CACHE_HOME", ".cache"));
        m.insert("XDG_DATA_HOME", xdg("XDG_DATA_HOME", ".local/share"));
        let downloads = std::fs::read_to_string(Path::new(&config).join("user-dirs.dirs"))
            .ok()
            .and_then(|t| download_dir(&t, &home))
            .unwrap_or(format!("{home}/Downloads"));
        m.insert("XDG_DOWNLOAD_DIR", downloads);
        let raw = |k: &str| {
            host.env
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.to_str())
        };
        m.insert(
            "XAUTHORITY",
            env(host, "XAUTHORITY")
                .map(str::to_string)
                .unwrap_or(format!("{home}/.Xauthority")),
        );
        // A socket name under XDG_RUNTIME_DIR, never a path of its own.
        if let Some(w) = raw("WAYLAND_DISPLAY").filter(|w| {
            !w.is_empty()
                && !w.starts_with('.')
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }) {
            m.insert("WAYLAND_DISPLAY", w.to_string());
        }
        // The number of a local display (":0" or ":0.0"): its socket is /tmp/.X11-unix/XN.
        if let Some(n) = raw("DISPLAY")
            .and_then(|d| d.strip_prefix(':'))
            .map(|d| d.split('.').next().unwrap_or(""))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            m.insert("X11_DISPLAY", n.to_string());
        }
        m.insert("XDG_CONFIG_HOME", config);
        Vars(m)
    }
}

/// `XDG_DOWNLOAD_DIR="$HOME/Downloads"` from user-dirs.dirs (xdg-user-dirs' format:
/// a quoted path, absolute or starting with `$HOME/`).
pub fn download_dir(text: &str, home: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("XDG_DOWNLOAD_DIR="))?;
    let v = line
        .trim_start()
        .trim_start_matches("XDG_DOWNLOAD_DIR=")
        .trim()
        .trim_matches('"');
    if let Some(rest) = v.strip_prefix("$HOME") {
        Some(format!("{home}{rest}"))
    } else {
        Path::new(v).is_absolute().then(|| v.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` with a name outside the allow-list.
    Unknown(String),
    /// An allowed variable with no value here.
    Unset(String),
    Unterminated,
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unknown(n) => {
                write!(f, "unknown variable ${{{n}}} (known: {})", NAMES.join(", "))
            }
            ExpandError::Unset(n) => write!(f, "variable ${{{n}}} is not set here"),
            ExpandError::Unterminated => write!(f, "`${{` without a closing `}}`"),
        }
    }
}

/// Substitute `${NAME}` and a leading `~` (alone or followed by `/`).
pub fn expand(s: &str, vars: &Vars) -> Result<String, ExpandError> {
    let get = |n: &str| -> Result<&String, ExpandError> {
        if !NAMES.contains(&n) {
            return Err(ExpandError::Unknown(n.to_string()));
        }
        vars.0
            .get(n)
            .ok_or_else(|| ExpandError::Unset(n.to_string()))
    };
    let mut out = String::new();
    let mut rest = s;
    if rest == "~" || rest.starts_with("~/") {
        out.push_str(get("HOME")?);
        rest = &rest[1..];
    }
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated)?;
        out.push_str(get(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn expand_path(s: &str, vars: &Vars) -> Result<PathBuf, ExpandError> {
    expand(s, vars).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut m = BTreeMap::new();
        m.insert("HOME", "/home/a".to_string());
        m.insert("UID", "1000".to_string());
        Vars(m)
    }

    #[test]
    fn substitutes_only_allowed_variables() {
        assert_eq!(
            expand("${HOME}/x/${UID}", &vars()).unwrap(),
            "/home/a/x/1000"
        );
        assert_eq!(expand("~/.ssh", &vars()).unwrap(), "/home/a/.ssh");
        assert_eq!(expand("~", &vars()).unwrap(), "/home/a");
        assert_eq!(
            expand("/a/~b", &vars()).unwrap(),
            "/a/~b",
            "~ only at the start"
        );
        assert_eq!(
            expand("/cost$5", &vars()).unwrap(),
            "/cost$5",
            "a lone $ is literal"
        );
        assert_eq!(
            expand("${PATH}", &vars()),
            Err(ExpandError::Unknown("PATH".into()))
        );
        assert_eq!(
            expand("${XDG_RUNTIME_DIR}/x", &vars()),
            Err(ExpandError::Unset("XDG_RUNTIME_DIR".into()))
        );
        assert_eq!(expand("${HOME", &vars()), Err(ExpandError::Unterminated));
        assert_eq!(
            expand("$(id)", &vars()).unwrap(),
            "$(id)",
            "nothing is evaluated"
        );
    }

    #[test]
    fn download_dir_from_user_dirs() {
        let t = "# comment\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        assert_eq!(
            download_dir(t, "/home/a").unwrap(),
            "/home/a/Téléchargements"
        );
        assert_eq!(
            download_dir("XDG_DOWNLOAD_DIR=\"/data/dl\"", "/h").unwrap(),
            "/data/dl"
        );
        assert_eq!(download_dir("XDG_DOWNLOAD_DIR=\"rel\"", "/h"), None);
    }
}

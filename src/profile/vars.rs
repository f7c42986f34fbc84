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
    "XDG_STATE_HOME",
    "XDG_DOWNLOAD_DIR",
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_STATE",
    "WAYLAND_DISPLAY",
    "X11_DISPLAY",
    "XAUTHORITY",
];

/// The values for one invocation; a variable absent here is unset (e.g. no
/// XDG_RUNTIME_DIR), which fails a required entry and skips an optional one. The
/// second field says which value read from a file was refused, and why.
#[derive(Debug, Clone, Default)]
pub struct Vars(pub BTreeMap<&'static str, String>, pub Vec<String>);

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
        m.insert("XDG_STATE_HOME", xdg("XDG_STATE_HOME", ".local/state"));
        let mut refused = Vec::new();
        let downloads = download_dir_of(host, &home, &config, &mut refused);
        m.insert("XDG_DOWNLOAD_DIR", downloads);
        desktop_vars(host, &home, &mut m);
        m.insert("XDG_CONFIG_HOME", config);
        Vars(m, refused)
    }
}

/// `XDG_DOWNLOAD_DIR` from user-dirs.dirs when it names an ordinary directory of
/// the home (else ~/Downloads, and why in `refused`).
fn download_dir_of(host: &Host, home: &str, config: &str, refused: &mut Vec<String>) -> String {
    let home = home.to_string();
    let dirs_file = Path::new(&config).join("user-dirs.dirs");
    let path_var = host
        .env
        .iter()
        .find(|(n, _)| n == "PATH")
        .and_then(|(_, v)| v.to_str())
        .unwrap_or("");
    let path_dirs: Vec<&str> = path_var.split(':').collect();
    std::fs::read_to_string(&dirs_file)
        .ok()
        .and_then(|t| download_dir(&t, &home))
        .and_then(|d| match derived_ok(&d, &home, &path_dirs) {
            Ok(()) => Some(d),
            Err(why) => {
                refused.push(format!(
                    "{} sets XDG_DOWNLOAD_DIR to {d:?}, which {why}: a sandbox can write \
                     that file, so ~/Downloads is used instead (edit the file to change this)",
                    dirs_file.display()
                ));
                None
            }
        })
        .unwrap_or(format!("{home}/Downloads"))
}

/// The step files of GitHub Actions, the X authority file, the Wayland socket name
/// and the local X11 display number, as variables.
fn desktop_vars(host: &Host, home: &str, m: &mut BTreeMap<&'static str, String>) {
    let raw = |k: &str| {
        host.env
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.to_str())
    };
    // GitHub Actions' step files (outputs, environment, PATH, summary, state): a
    // CI job writes them. Absolute paths only, as every path variable.
    for k in [
        "GITHUB_OUTPUT",
        "GITHUB_ENV",
        "GITHUB_PATH",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_STATE",
    ] {
        if let Some(v) = env(host, k) {
            m.insert(k, v.to_string());
        }
    }
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
}

/// A directory read from a file in the home (which a sandbox may have written) may
/// only name an ordinary directory of the home: strictly below it, with no `..` and
/// no hidden component (`~/.ssh`, `~/.config/autostart`, `~/.local/bin` are all
/// hidden). Symlinks on the way are refused later, as for every profile path.
pub fn derived_ok(dir: &str, home: &str, path: &[&str]) -> Result<(), &'static str> {
    let rest = Path::new(dir)
        .strip_prefix(home)
        .map_err(|_| "is not inside $HOME")?;
    let mut n = 0;
    for c in rest.components() {
        match c {
            std::path::Component::Normal(name) if !name.as_encoded_bytes().starts_with(b".") => {
                n += 1
            }
            std::path::Component::Normal(_) => return Err("has a hidden component"),
            _ => return Err("has a `.` or `..` component"),
        }
    }
    match n {
        0 => Err("is $HOME itself"),
        // One directory of the home (~/Downloads, ~/Téléchargements): not one deeper,
        // such as a project's directory, and not one whose programs run (~/bin).
        1 if path.iter().any(|p| Path::new(p) == Path::new(dir)) => Err("is on your PATH"),
        1 if rest.as_os_str() == "bin" => Err("is ~/bin, where programs run from"),
        1 => Ok(()),
        _ => Err("is not a directory directly in $HOME"),
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
        Vars(m, Vec::new())
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

    #[test]
    fn xdg_variables_come_from_the_environment_when_absolute() {
        let host = crate::host::Host {
            home: "/h".into(),
            env: [
                ("XDG_CACHE_HOME", "/fast/cache"),
                ("XDG_DATA_HOME", "relative/data"),
                ("GITHUB_OUTPUT", "/runner/out"),
            ]
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
            ..Default::default()
        };
        let v = Vars::from_host(&host);
        assert_eq!(v.0["XDG_CACHE_HOME"], "/fast/cache");
        assert_eq!(
            v.0["XDG_DATA_HOME"], "/h/.local/share",
            "a relative value is ignored"
        );
        assert_eq!(v.0["XDG_CONFIG_HOME"], "/h/.config");
        assert_eq!(v.0["GITHUB_OUTPUT"], "/runner/out");
        assert!(!v.0.contains_key("GITHUB_ENV"));
    }

    /// A display is a socket name or number, never a path a profile would follow.
    #[test]
    fn display_variables_name_sockets_only() {
        let with = |k: &str, v: &str| {
            Vars::from_host(&crate::host::Host {
                home: "/h".into(),
                env: vec![(k.into(), v.into())],
                ..Default::default()
            })
            .0
        };
        for (w, ok) in [
            ("wayland-0", true),
            ("w_1.sock", true),
            ("", false),
            (".hidden", false),
            ("../x", false),
            ("/run/user/1/wayland-0", false),
            ("a b", false),
        ] {
            assert_eq!(
                with("WAYLAND_DISPLAY", w).get("WAYLAND_DISPLAY").cloned(),
                ok.then(|| w.to_string()),
                "WAYLAND_DISPLAY={w:?}"
            );
        }
        for (d, n) in [
            (":0", Some("0")),
            (":12.1", Some("12")),
            ("host:0", None),
            (":", None),
            (":.0", None),
            (":0x", None),
            ("0", None),
        ] {
            assert_eq!(
                with("DISPLAY", d).get("X11_DISPLAY").map(String::as_str),
                n,
                "DISPLAY={d:?}"
            );
        }
        assert!(!with("PATH", "/usr/bin").contains_key("WAYLAND_DISPLAY"));
    }

    /// XDG_DOWNLOAD_DIR comes from user-dirs.dirs only when it passes derived_ok (the
    /// refusal is reported); PATH from the environment takes part in that judgement.
    #[test]
    fn download_dir_from_the_file_is_judged() {
        let d = std::env::temp_dir().join(format!("sbx-vars-{}", std::process::id()));
        std::fs::create_dir_all(d.join(".config")).unwrap();
        let home = d.to_string_lossy().into_owned();
        let run = |line: &str, path: &str| {
            std::fs::write(d.join(".config/user-dirs.dirs"), line).unwrap();
            Vars::from_host(&crate::host::Host {
                home: d.clone(),
                env: vec![("PATH".into(), path.into())],
                ..Default::default()
            })
        };
        let v = run("XDG_DOWNLOAD_DIR=\"$HOME/Dl\"\n", "/usr/bin");
        assert_eq!(v.0["XDG_DOWNLOAD_DIR"], format!("{home}/Dl"));
        assert!(v.1.is_empty());
        let v = run(
            "XDG_DOWNLOAD_DIR=\"$HOME/Dl\"\n",
            &format!("/usr/bin:{home}/Dl"),
        );
        assert_eq!(v.0["XDG_DOWNLOAD_DIR"], format!("{home}/Downloads"));
        assert!(v.1[0].contains("is on your PATH"), "{:?}", v.1);
        let v = run("XDG_DOWNLOAD_DIR=\"$HOME/.local/bin\"\n", "/usr/bin");
        assert_eq!(v.0["XDG_DOWNLOAD_DIR"], format!("{home}/Downloads"));
        assert!(v.1[0].contains("hidden"), "{:?}", v.1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn derived_directories_stay_ordinary_home_directories() {
        let path = ["/usr/bin", "/h/tools"];
        assert_eq!(derived_ok("/h/Downloads", "/h", &path), Ok(()));
        assert_eq!(derived_ok("/h/Téléchargements", "/h", &path), Ok(()));
        for bad in [
            "/h",
            "/h/",
            "/h/.ssh",
            "/h/.config/autostart",
            "/h/Dl/.hidden",
            "/h/../etc",
            "/h/Dl/../.ssh",
            "/etc",
            "/home/other",
            "/hx/Downloads",
            "/h/Media/Dl",
            "/h/src/project",
            "/h/bin",
            "/h/tools",
        ] {
            assert!(derived_ok(bad, "/h", &path).is_err(), "{bad} accepted");
        }
    }
}

//! The session bus through xdg-dbus-proxy (the `dbus` abstraction): the sandbox
//! never gets the user's bus socket, only a proxy's, which enforces the profile's
//! filter (names it may own, names it may talk to), as flatpak does. The launcher
//! starts the proxy before the sandbox and stops it after; its socket lives in a
//! private per-launch directory beside the sandbox records.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::{Access, Mount, MountOp};

pub const PROXY: &str = "/usr/bin/xdg-dbus-proxy";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbusPlan {
    pub program: PathBuf,
    /// The user's bus, as DBUS_SESSION_BUS_ADDRESS gives it.
    pub upstream: String,
    /// The per-launch directory holding the proxy's socket `bus` (host side).
    #[serde(serialize_with = "crate::plan::lossy")]
    pub dir: PathBuf,
    /// Where the socket appears inside.
    #[serde(serialize_with = "crate::plan::lossy")]
    pub inside: PathBuf,
    /// The filter: `--filter --own=… --talk=…`.
    pub filter: Vec<String>,
}

/// The proxy, the bind of its socket and the address the command gets.
pub type Proxied = (DbusPlan, Mount, String);

/// The proxy plan, the bind of its socket and the address the command gets; None
/// (and a notice) where the host has no session bus.
pub fn plan(
    policy: &Option<(Vec<String>, Vec<String>)>,
    upstream: Option<&str>,
    records: Option<&std::path::Path>,
    pid: u32,
    runtime_inside: &std::path::Path,
    proxy_present: bool,
) -> Result<(Option<Proxied>, Option<String>)> {
    let Some((own, talk)) = policy else {
        return Ok((None, None));
    };
    let Some(upstream) = upstream.filter(|u| !u.is_empty()) else {
        return Ok((
            None,
            Some("dbus: no session bus here (DBUS_SESSION_BUS_ADDRESS is unset): the sandbox gets none".into()),
        ));
    };
    if !proxy_present {
        return Err(Error::new(
            "dbus",
            format!("{PROXY} is missing: install it with `apt-get install xdg-dbus-proxy`"),
        ));
    }
    for n in own.iter().chain(talk) {
        let ok = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b));
        if !ok {
            return Err(Error::new("dbus", format!("{n:?} is not a bus name")));
        }
    }
    let mut filter = vec!["--filter".to_string()];
    filter.extend(own.iter().map(|n| format!("--own={n}")));
    filter.extend(talk.iter().map(|n| format!("--talk={n}")));
    // The proxy's socket lives in a private directory beside the records: without
    // one of the user's own, there is nowhere safe for it.
    let Some(records) = records else {
        return Ok((
            None,
            Some("dbus: no private directory of yours for the bus proxy (see the sandbox records notice): the sandbox gets no session bus".into()),
        ));
    };
    let dir = records.join(format!("dbus-{pid}"));
    let inside = runtime_inside.join("bus");
    let mount = Mount {
        op: MountOp::Bind {
            src: dir.join("bus"),
            dst: inside.clone(),
            access: Access::ReadOnly,
        },
        origin: "dbus (xdg-dbus-proxy)".into(),
    };
    let address = format!("unix:path={}", inside.display());
    Ok((
        Some((
            DbusPlan {
                program: PROXY.into(),
                upstream: upstream.to_string(),
                dir,
                inside,
                filter,
            },
            mount,
            address,
        )),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_filtered_proxy_socket_replaces_the_bus() {
        let policy = Some((
            vec!["org.example.App".into()],
            vec!["org.freedesktop.portal.*".into()],
        ));
        let (p, notice) = plan(
            &policy,
            Some("unix:path=/run/user/1000/bus"),
            Some(Path::new("/run/user/1000/sbx")),
            42,
            Path::new("/run/user/1000"),
            true,
        )
        .unwrap();
        assert!(notice.is_none());
        let (p, mount, address) = p.unwrap();
        assert_eq!(
            p.filter,
            [
                "--filter",
                "--own=org.example.App",
                "--talk=org.freedesktop.portal.*"
            ]
        );
        assert_eq!(address, "unix:path=/run/user/1000/bus");
        assert_eq!(mount.op.dst(), Path::new("/run/user/1000/bus"));
        let MountOp::Bind { src, .. } = mount.op else {
            panic!()
        };
        assert_eq!(src, Path::new("/run/user/1000/sbx/dbus-42/bus"));
    }

    #[test]
    fn no_bus_is_a_notice_and_no_proxy_an_error() {
        let policy = Some((vec![], vec![]));
        let (p, notice) = plan(
            &policy,
            None,
            Some(Path::new("/x")),
            1,
            Path::new("/r"),
            true,
        )
        .unwrap();
        assert!(p.is_none() && notice.unwrap().contains("no session bus"));
        let e = plan(
            &policy,
            Some("unix:path=/b"),
            Some(Path::new("/x")),
            1,
            Path::new("/r"),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("apt-get install xdg-dbus-proxy"));
        let bad = Some((vec!["a b".into()], vec![]));
        assert!(plan(
            &bad,
            Some("unix:path=/b"),
            Some(Path::new("/x")),
            1,
            Path::new("/r"),
            true
        )
        .is_err());
        assert!(plan(
            &None,
            Some("unix:path=/b"),
            Some(Path::new("/x")),
            1,
            Path::new("/r"),
            true
        )
        .unwrap()
        .0
        .is_none());
    }
}

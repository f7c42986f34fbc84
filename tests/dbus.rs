//! The `dbus` abstraction against a private session bus the test starts: the
//! sandbox talks to the bus only through xdg-dbus-proxy, which sbx starts and stops
//! with it, and which enforces the profile's filter; the real bus socket stays out.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn the_session_bus_only_through_a_filtering_proxy_that_ends_with_the_sandbox() {
    for bin in [
        "/usr/bin/dbus-daemon",
        "/usr/bin/xdg-dbus-proxy",
        "/usr/bin/dbus-send",
    ] {
        if !std::path::Path::new(bin).exists() {
            skip(
                Lacking::Setup,
                &format!("{bin} is missing (tests/setup.sh installs dbus and xdg-dbus-proxy)"),
            );
            return;
        }
    }
    for u in users() {
        let fx = Fixture::new(u, "dbus");
        let bus = fx.path.join("bus");
        let mut daemon = spawn_until(
            as_user(u, "dbus-daemon")
                .args(["--session", "--nofork", "--print-address=1"])
                .arg(format!("--address=unix:path={}", bus.display()))
                .stderr(Stdio::null()),
            "unix:",
            Duration::from_secs(20),
        );
        let pfx = Fixture::new(u, "dbus-profile");
        let profile = pfx.file(
            "bus.toml",
            "version = 1\ninclude = [\"minimal\", \"dbus\"]\n[dbus]\nown = [\"org.sbx.Allowed\"]\n",
            u,
        );
        let call = |method: &str, args: &str| {
            format!(
                "dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                 org.freedesktop.DBus.{method} {args} >/dev/null 2>&1 && echo {method}-ok || echo {method}-refused"
            )
        };
        let script = format!(
            "echo $DBUS_SESSION_BUS_ADDRESS; test -e {bus} && echo raw-bus-visible || echo raw-bus-absent; {}; {}; {}",
            call("ListNames", ""),
            call("RequestName", "string:org.sbx.Allowed uint32:0"),
            call("RequestName", "string:org.sbx.Other uint32:0"),
            bus = bus.display()
        );
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                profile.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        c.env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", bus.display()),
        )
        .env("XDG_RUNTIME_DIR", fx.path.join("run"));
        std::fs::create_dir_all(fx.path.join("run")).unwrap();
        fx.chown(&fx.path.join("run"), u);
        std::fs::set_permissions(
            fx.path.join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let o = output(c);
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert_eq!(
            stdout(&o),
            format!(
                "unix:path={}/bus\nraw-bus-absent\nListNames-ok\nRequestName-ok\nRequestName-refused\n",
                fx.path.join("run").display()
            ),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        // The proxy and its socket directory are gone with the sandbox.
        let records = fx.path.join("run/sbx");
        let left: Vec<_> = std::fs::read_dir(&records)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "as {}: left in {}: {left:?}",
            u.name,
            records.display()
        );
        let proxies = processes_with(&format!("{}/bus", fx.path.join("run/sbx").display()));
        assert!(
            proxies.is_empty(),
            "as {}: a proxy is left: {proxies:?}",
            u.name
        );
    }
}

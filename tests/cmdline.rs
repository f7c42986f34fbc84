//! Everyday command lines: typos, actions together, durations, a command the
//! profile does not grant.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn an_unknown_option_is_an_error_that_runs_nothing() {
    for u in users() {
        let fx = Fixture::new(u, "typo");
        let mark = fx.path.join("ran");
        let o = run(
            u,
            &["--porfile", "dev", "--", "touch", mark.to_str().unwrap()],
        );
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("--porfile") && stderr(&o).contains("--profile"),
            "{}",
            stderr(&o)
        );
        assert!(!mark.exists());
        // After the command's first word, everything is the command's.
        let o = run(u, &["--", "echo", "--porfile"]);
        assert_eq!(stdout(&o), "--porfile\n", "{}", stderr(&o));
        let o = run(u, &["echo", "--porfile"]);
        assert_eq!(stdout(&o), "--porfile\n", "{}", stderr(&o));
    }
}

#[test]
fn two_actions_together_are_an_error_naming_both() {
    let u = &users()[0];
    for (a, b) in [
        (vec!["--profiles"], vec!["--list"]),
        (
            vec!["--print-profile", "dev"],
            vec!["--check-profile", "x.toml"],
        ),
        (vec!["--kill", "a"], vec!["--inspect", "b"]),
    ] {
        let args: Vec<&str> = a.iter().chain(b.iter()).copied().collect();
        let o = run(u, &args);
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(
            stderr(&o).contains(a[0]) && stderr(&o).contains(b[0]),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            stdout(&o).is_empty(),
            "{args:?} ran one of them: {}",
            stdout(&o)
        );
    }
}

#[test]
fn timeout_takes_durations_as_timeout_does() {
    let u = &users()[0];
    for d in ["30", "1.5", "30s", "5m", "2h", "1d"] {
        let o = run(u, &["--timeout", d, "--", "true"]);
        assert_eq!(code(&o), 0, "--timeout {d}: {}", stderr(&o));
    }
    // It is enforced: a command that would sleep for a minute ends at once, 124.
    let start = Instant::now();
    let o = run(u, &["--timeout", "0.3s", "--", "sleep", "60"]);
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(30));
    let o = run(u, &["--timeout", "5x", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--timeout"), "{}", stderr(&o));
}

#[test]
fn a_command_on_the_host_but_not_granted_says_where_it_is() {
    for u in users() {
        let fx = Fixture::new(u, "tool");
        let tool = fx.file("bin/mytool", "#!/bin/sh\necho tool-ran\n", u);
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = fx.path.join("bin");
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let mut c = sbx_cmd(u, ["--", "mytool"]);
        c.env("PATH", &path);
        let o = output(c);
        assert_eq!(code(&o), 127, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("on the host it is {}", tool.display()))
                && err.contains(&format!("--ro-bind {}", bin.display())),
            "as {}: {err}",
            u.name
        );
        // Following the hint works.
        let mut c = sbx_cmd(u, ["--ro-bind", bin.to_str().unwrap(), "--", "mytool"]);
        c.env("PATH", &path);
        assert_eq!(stdout(&output(c)), "tool-ran\n");
        // A command that is a link into another directory (as pipx leaves them), in
        // a directory whose name holds a space: both directories, quoted.
        let real = fx.file("my tools/real-tool", "#!/bin/sh\necho real-ran\n", u);
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = bin.join("linked");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        fx.chown(&link, u);
        let mut c = sbx_cmd(u, ["--", "linked"]);
        c.env("PATH", &path);
        let err = stderr(&output(c));
        let real_dir = fx.path.join("my tools");
        assert!(
            err.contains(&format!(
                "--ro-bind {} --ro-bind '{}'",
                bin.display(),
                real_dir.display()
            )),
            "as {}: {err}",
            u.name
        );
        let mut c = sbx_cmd(
            u,
            [
                "--ro-bind",
                bin.to_str().unwrap(),
                "--ro-bind",
                real_dir.to_str().unwrap(),
                "--",
                "linked",
            ],
        );
        c.env("PATH", &path);
        assert_eq!(stdout(&output(c)), "real-ran\n");
        // Bound elsewhere, it still is not found where PATH looks: the hint stays.
        let mut c = sbx_cmd(
            u,
            [
                "--ro-bind",
                &format!("{}:/elsewhere", bin.display()),
                "--",
                "mytool",
            ],
        );
        c.env("PATH", &path);
        assert!(
            stderr(&output(c)).contains("on the host it is"),
            "as {}",
            u.name
        );
        // Not on the host either: no hint.
        let o = run(u, &["--", "no-such-tool-anywhere"]);
        assert_eq!(code(&o), 127);
        assert!(!stderr(&o).contains("on the host"), "{}", stderr(&o));
    }
}

/// Run `sbx ARGS` as `u` with --info-fd 3 and --status-fd 4 going to files; returns
/// (exit status, info text, status text).
fn with_fds(u: &User, fx: &Fixture, args: &str) -> (i32, String, String) {
    let (info, status) = (fx.path.join("info"), fx.path.join("status"));
    let _ = std::fs::remove_file(&info);
    let _ = std::fs::remove_file(&status);
    let script = format!(
        "{} -q --info-fd 3 --status-fd 4 {args} 3>{} 4>{}",
        sbx_bin().display(),
        info.display(),
        status.display()
    );
    let o = output(user_sh(u, &script));
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    (code(&o), read(&info), read(&status))
}

#[test]
fn status_fd_tells_the_commands_status_from_sbxs_failures() {
    for u in users() {
        let fx = Fixture::new(u, "status");
        // The command ran: its own 125, 126, 127 are exit codes.
        for n in [0, 3, 125, 126, 127] {
            let (c, info, status) = with_fds(u, &fx, &format!("-- sh -c 'exit {n}'"));
            assert_eq!(c, n);
            assert_eq!(status, format!("{{\"exit_code\":{n}}}\n"), "as {}", u.name);
            let v: serde_json::Value = serde_json::from_str(&info).unwrap();
            assert!(v["child-pid"].as_i64().unwrap() > 1, "{info}");
            for ns in ["user", "mnt", "pid", "ipc", "uts", "net", "cgroup"] {
                assert!(v["namespaces"][ns].as_u64().unwrap() > 0, "{ns}: {info}");
            }
        }
        // It did not: an error object with the step, never an exit_code.
        for (args, want_status, step) in [
            ("-- no-such-command-x", 127, "no-such-command-x"),
            ("-- /etc/passwd", 126, "cannot execute"),
            ("--cwd /no/such/dir -- true", 125, "--cwd"),
            (
                "--ro-bind /no/such/source -- true",
                125,
                "--ro-bind /no/such/source",
            ),
            ("--profile no-such-profile -- true", 125, "--profile"),
        ] {
            let (c, _, status) = with_fds(u, &fx, args);
            assert_eq!(c, want_status, "{args}");
            let v: serde_json::Value =
                serde_json::from_str(&status).unwrap_or_else(|e| panic!("{args}: {e}: {status:?}"));
            assert!(v.get("exit_code").is_none(), "{args}: {status}");
            assert_eq!(v["error"]["status"], want_status, "{args}: {status}");
            assert!(
                v["error"]["step"].as_str().unwrap().contains(step),
                "{args}: {status}"
            );
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        }
        let (c, _, status) = with_fds(u, &fx, "--timeout 0.2 -- sleep 60");
        assert_eq!(c, 124);
        assert_eq!(status, "{\"exit_code\":124,\"timed_out\":true}\n");
    }
}

#[test]
fn sbx_runs_inside_sbx_with_the_nested_profile() {
    let bin = sbx_bin();
    let dir = bin.parent().unwrap().to_str().unwrap().to_string();
    let inner = bin.to_str().unwrap().to_string();
    for u in users() {
        let script =
            "echo inner; hostname; cat /proc/self/uid_map | wc -l; ls /proc | grep -c '^[0-9]'";
        let o = run(
            u,
            &[
                "-q",
                "--profile",
                "nested",
                "--ro-bind",
                &dir,
                "--",
                &inner,
                "-q",
                "--",
                "sh",
                "-c",
                script,
            ],
        );
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..3], ["inner", "sbx", "1"], "as {}: {out}", u.name);
        // Its own pid namespace: its PID 1 and the shell (and ls, grep).
        let procs: u32 = lines[3].trim().parse().unwrap();
        assert!(
            procs <= 4,
            "as {}: {procs} processes visible inside",
            u.name
        );
        // The outer sandbox says what nesting costs it.
        let o = run(u, &["--profile", "nested", "--", "true"]);
        assert!(stderr(&o).contains("landlock = \"off\""), "{}", stderr(&o));
        // Without nesting, the inner sbx says what to do.
        let o = run(
            u,
            &["-q", "--ro-bind", &dir, "--", &inner, "-q", "--", "true"],
        );
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--profile nested"), "{}", stderr(&o));
    }
}

#[test]
fn a_later_mount_covers_an_earlier_one_and_the_plan_agrees() {
    for u in users() {
        // The current directory under /tmp, then a tmpfs over /tmp (bubblewrap's rule:
        // the later mount wins, what it covers is gone).
        let fx = Fixture::new(u, "cover");
        fx.file("marker", "x", u);
        let mut c = sbx_cmd(
            u,
            [
                "--tmpfs",
                "/tmp",
                "--",
                "sh",
                "-c",
                "ls -A /tmp | wc -l; pwd",
            ],
        );
        c.current_dir(&fx.path);
        let o = output(c);
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        assert!(stdout(&o).starts_with("0\n"), "{}", stdout(&o));
        let mut c = sbx_cmd(u, ["--dry-run", "--tmpfs", "/tmp", "--", "true"]);
        c.current_dir(&fx.path);
        let plan = stdout(&output(c));
        // Every op runs, in order (the covered bind too, as in bubblewrap), but no
        // Landlock rule names what the tmpfs covers.
        assert!(
            plan.contains(&format!("\"dst\": \"{}\"", fx.path.display())),
            "{plan}"
        );
        assert!(
            !plan.contains(&format!("\"path\": \"{}\"", fx.path.display())),
            "{plan}"
        );
    }
}

#[test]
fn the_inherited_terminal_is_a_terminal_inside() {
    for u in users() {
        let mut pty = Pty::new(u);
        let cmd = sbx_cmd(
            u,
            [
                "-q",
                "--",
                "sh",
                "-c",
                "tty; python3 -c 'import os; print(\"ttyname\", os.ttyname(0))'; \
                 echo via-dev-tty > /dev/tty; ls /dev/pts | tr '\\n' ' '; echo; echo end",
            ],
        );
        let child = pty.spawn(cmd);
        let got = pty.read_until("end\r\n", Duration::from_secs(30));
        let _ = pty.drain(Duration::from_secs(5));
        wait_status(child, "sbx under a pty");
        assert!(
            got.contains("/dev/console\r\n"),
            "as {}: tty: {got:?}",
            u.name
        );
        assert!(
            got.contains("ttyname /dev/console"),
            "as {}: {got:?}",
            u.name
        );
        assert!(got.contains("via-dev-tty"), "{got:?}");
        // The sandbox's own ptys only: no other terminal of the host.
        assert!(
            got.contains("ptmx \r\n"),
            "as {}: /dev/pts: {got:?}",
            u.name
        );
    }
}

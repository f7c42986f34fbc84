//! The command's process, PID 1 and the sandbox's lifetime.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn command_has_no_capabilities_and_no_new_privs() {
    for u in users() {
        let st = sh(u, &[], "cat /proc/self/status");
        for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                status_field(&st, k),
                "0000000000000000",
                "as {}: {k}",
                u.name
            );
        }
        assert_eq!(status_field(&st, "NoNewPrivs"), "1");
        assert_eq!(
            status_field(&st, "Seccomp"),
            "2",
            "a seccomp filter is installed"
        );
    }
}

#[test]
fn cap_add_keeps_one_named_capability_and_says_so() {
    for u in users() {
        let o = run(
            u,
            &["--cap-add", "NET_RAW", "--", "cat", "/proc/self/status"],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let st = stdout(&o);
        for k in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                status_field(&st, k),
                "0000000000002000",
                "as {}: {k}",
                u.name
            );
        }
        assert!(
            stderr(&o).contains("CAP_NET_RAW"),
            "announced: {}",
            stderr(&o)
        );
    }
}

/// Leave fd 7 open (no CLOEXEC) in the spawned process, as a careless caller would.
fn leak_fd_7(c: &mut std::process::Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY);
            if fd >= 0 && fd != 7 {
                libc::dup2(fd, 7);
            }
            Ok(())
        });
    }
}

#[test]
fn only_stdio_reaches_the_command() {
    for u in users() {
        // Control: without sbx the leaked descriptor is there.
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "ls /proc/$$/fd"]);
        leak_fd_7(&mut c);
        assert!(stdout(&output(c)).lines().any(|l| l == "7"));

        let mut c = sbx_cmd(u, ["--", "sh", "-c", "ls /proc/$$/fd"]);
        leak_fd_7(&mut c);
        let o = output(c);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), "0\n1\n2\n", "as {}", u.name);
    }
}

#[test]
fn hostname_cwd_and_environment() {
    for u in users() {
        assert_eq!(sh(u, &[], "hostname"), "sbx\n");
        assert_eq!(
            sh(u, &["--hostname", "box"], "cat /proc/sys/kernel/hostname"),
            "box\n"
        );
        // sbx_cmd starts in /, which exists inside.
        assert_eq!(sh(u, &[], "pwd; echo $PWD"), "/\n/\n");
        assert_eq!(sh(u, &["--cwd", "/etc"], "pwd"), "/etc\n");

        // The invoking cwd when it exists inside, else $HOME, else /: under `minimal`, a
        // directory of the host's /tmp does not exist inside, nor does $HOME.
        let fx = Fixture::new(u, "cwd");
        let home = u.home.to_str().unwrap();
        let mut c = sbx_cmd(u, ["--profile", "minimal", "--tmpfs", home, "pwd"]);
        c.current_dir(&fx.path);
        assert_eq!(stdout(&output(c)), format!("{home}\n"), "as {}", u.name);
        let mut c = sbx_cmd(u, ["--profile", "minimal", "pwd"]);
        c.current_dir(&fx.path);
        assert_eq!(stdout(&output(c)), "/\n", "as {}", u.name);
        // The default profile binds the current directory read-only.
        let mut c = sbx_cmd(
            u,
            [
                "--",
                "sh",
                "-c",
                "pwd; touch x 2>/dev/null || echo read-only",
            ],
        );
        c.current_dir(&fx.path);
        assert_eq!(
            stdout(&output(c)),
            format!("{}\nread-only\n", fx.path.display()),
            "as {}",
            u.name
        );
        let mut c = sbx_cmd(u, ["--profile", "minimal", "pwd"]);
        c.current_dir("/usr/bin");
        assert_eq!(stdout(&output(c)), "/usr/bin\n");

        // The environment is an allow-list.
        let mut c = sbx_cmd(
            u,
            [
                "--keep-env",
                "KEEP_ME",
                "--setenv",
                "ADDED=1",
                "--unsetenv",
                "LANG",
                "--",
                "env",
            ],
        );
        c.env("SECRET_TOKEN", "s3cret")
            .env("SSH_AUTH_SOCK", "/run/user/1/ssh")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x")
            .env("KEEP_ME", "kept")
            .env("TERM", "xterm")
            .env("LC_ALL", "C");
        let o = output(c);
        let env = stdout(&o);
        let keys: std::collections::BTreeSet<&str> =
            env.lines().map(|l| l.split('=').next().unwrap()).collect();
        let want: std::collections::BTreeSet<&str> = [
            "PATH", "HOME", "USER", "LOGNAME", "TERM", "LC_ALL", "KEEP_ME", "ADDED", "PWD",
        ]
        .into();
        assert_eq!(keys, want, "as {}: {env}", u.name);
        assert!(env.contains("KEEP_ME=kept\n") && env.contains("ADDED=1\n"));
    }
}

#[test]
fn pid1_reaps_orphans() {
    for u in users() {
        // The orphan is re-parented to PID 1; once it exits it must vanish from /proc
        // (reaped), not linger as a zombie.
        let out = sh(
            u,
            &[],
            "sh -c 'sleep 0.05 & echo $! > /tmp/orphan'; pid=$(cat /tmp/orphan); \
             read t0 _ < /proc/uptime; t0=${t0%.*}; \
             while [ -e /proc/$pid ]; do read t _ < /proc/uptime; [ ${t%.*} -gt $((t0 + 10)) ] && break; done; \
             if [ -e /proc/$pid ]; then echo lingering; else echo reaped; fi; echo $$",
        );
        assert_eq!(
            out, "reaped\n2\n",
            "as {}: the command is PID 2 under a reaper",
            u.name
        );
    }
}

#[test]
fn a_daemon_left_behind_dies_with_the_sandbox() {
    for u in users() {
        let marker = format!("1000.{}", unique());
        let o = run(
            u,
            &[
                "--",
                "sh",
                "-c",
                &format!("setsid sleep {marker} >/dev/null 2>&1 & echo started"),
            ],
        );
        assert_eq!(stdout(&o), "started\n");
        // sbx returns only once PID 1 is gone, and the kernel kills the pid namespace
        // before that: nothing may remain, with no grace period.
        assert_eq!(
            processes_with(&marker),
            Vec::<i32>::new(),
            "as {}: daemon survived",
            u.name
        );
    }
}

/// The sandbox's PID 1: the child of sbx that is pid 1 in its own pid namespace.
fn pid1_of(sbx: i32) -> i32 {
    let children =
        std::fs::read_to_string(format!("/proc/{sbx}/task/{sbx}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .find(|p: &i32| {
            let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            st.lines()
                .any(|l| l.starts_with("NSpid:") && l.split_whitespace().last() == Some("1"))
        })
        .expect("sbx has a PID 1 child")
}

#[test]
fn signals_are_forwarded_to_the_command() {
    let sigs = [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("HUP", libc::SIGHUP),
        ("QUIT", libc::SIGQUIT),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
        ("WINCH", libc::SIGWINCH),
    ];
    for u in users() {
        for (to_pid1, (name, sig)) in sigs.iter().enumerate().map(|(i, s)| (i % 2 == 1, s)) {
            let script =
                format!("trap 'echo got-{name}; exit 3' {name}; sleep 1000 & echo ready; wait");
            let child = sbx_cmd(u, ["-q", "--", "sh", "-c", &script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(child.stdout.as_ref().unwrap());
            let got = read_until(fd, "ready", Duration::from_secs(20));
            assert!(got.contains("ready"), "as {}: {got}", u.name);
            let sbx = child.id() as i32;
            // Odd rounds signal PID 1 directly (the launcher's child), even ones sbx itself.
            let target = if to_pid1 { pid1_of(sbx) } else { sbx };
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(target, *sig) };
            let o = wait_output(child, "signal forwarding");
            assert_eq!(
                code(&o),
                3,
                "as {}: SIG{name} to {}: {}",
                u.name,
                if to_pid1 { "PID 1" } else { "sbx" },
                stderr(&o)
            );
            assert_eq!(stdout(&o), format!("got-{name}\n"));
        }
    }
}

#[test]
fn killing_sbx_kills_the_whole_sandbox() {
    for u in users() {
        let marker = format!("1000.{}", unique());
        let script = format!("sleep {marker} & sleep {marker} & echo ready; wait");
        let mut child = spawn_until(
            sbx_cmd(u, ["-q", "--", "sh", "-c", &script]).stderr(Stdio::piped()),
            "ready",
            Duration::from_secs(20),
        );
        assert!(processes_with(&marker).len() >= 3, "sandbox running");
        child.kill().unwrap();
        child.wait().unwrap();
        let left = wait_gone(&marker, Duration::from_secs(1));
        assert!(
            left.is_empty(),
            "as {}: left running after SIGKILL of sbx: {left:?}",
            u.name
        );
    }
}

/// SIGKILL at every moment of start-up, including before PID 1 exists: the
/// PDEATHSIG + pidfd check leaves no window in which a sandbox process survives.
#[test]
fn killing_sbx_during_setup_leaves_nothing() {
    for u in users() {
        for i in 0..40u64 {
            let marker = format!("1000.{}", unique());
            let mut child = sbx_cmd(u, ["-q", "--", "sleep", &marker])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Spread the kills over the ~3 ms of setup: a fault-injection delay, not a wait.
            std::thread::sleep(Duration::from_micros(i * 100));
            child.kill().unwrap();
            child.wait().unwrap();
            let left = wait_gone(&marker, Duration::from_secs(1));
            assert!(
                left.is_empty(),
                "as {}: kill after {}µs left {left:?}",
                u.name,
                i * 100
            );
        }
    }
}

#[test]
fn loopback_only_network_by_default() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\ns=socket.socket(); s.settimeout(5)\ntry:\n    s.connect(('127.0.0.1', {port})); print('host-reachable')\nexcept OSError as e:\n    print('host-unreachable')\n\
         srv=socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\nc=socket.create_connection(srv.getsockname(), 5); print('loopback-works')\n\
         print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))"
    );
    for u in users() {
        let out = sh(u, &[], &format!("python3 -c \"{probe}\""));
        assert_eq!(
            out, "host-unreachable\nloopback-works\n['lo']\n",
            "as {}",
            u.name
        );
        let out = sh(u, &["--net", "host"], &format!("python3 -c \"{probe}\""));
        assert!(
            out.starts_with("host-reachable\nloopback-works\n"),
            "as {}: {out}",
            u.name
        );
    }
    drop(listener);
}

const TIOCSTI_PROBE: &str = r#"
import fcntl, termios, errno
for name, req in [('TIOCSTI', termios.TIOCSTI), ('TIOCSTI-high', termios.TIOCSTI | (1 << 32)), ('TIOCLINUX', 0x541C)]:
    try:
        fcntl.ioctl(0, req, b'x')
        print(name, 'allowed')
    except OSError as e:
        print(name, errno.errorcode[e.errno])
"#;

/// Terminal injection is refused even on the controlling terminal, including with
/// the high bits of the request set (CVE-2019-10063).
#[test]
fn terminal_injection_is_refused() {
    for u in users() {
        let mut pty = Pty::new(u);
        let child = pty.spawn(sbx_cmd(u, ["-q", "--", "python3", "-c", TIOCSTI_PROBE]));
        let out = pty.read_until("TIOCLINUX", Duration::from_secs(20));
        let out = out + &pty.drain(Duration::from_secs(20));
        let status = wait_status(child, "TIOCSTI probe");
        assert!(status.success(), "as {}: {status:?}: {out}", u.name);
        assert!(out.contains("TIOCSTI EPERM"), "as {}: {out}", u.name);
        assert!(out.contains("TIOCSTI-high EPERM"), "as {}: {out}", u.name);
        assert!(out.contains("TIOCLINUX EPERM"), "as {}: {out}", u.name);
    }
}

/// An interactive shell keeps its controlling terminal: job control works.
#[test]
fn interactive_shell_has_job_control() {
    for u in users() {
        let mut pty = Pty::new(u);
        let mut c = sbx_cmd(u, ["-q", "--", "bash", "--norc", "--noprofile", "-i"]);
        c.env("TERM", "dumb");
        let child = pty.spawn(c);
        let mut seen = pty.read_until("$ ", Duration::from_secs(20));
        // The job prints a marker once it is in the foreground, then waits.
        pty.write("sh -c 'echo RE\"\"ADY; exec sleep 1000'\n");
        seen += &pty.read_until("READY\r\n", Duration::from_secs(20));
        pty.write("\x1a"); // ^Z
        seen += &pty.read_until("Stopped", Duration::from_secs(20));
        pty.write("kill -9 %1\n");
        seen += &pty.read_until("$ ", Duration::from_secs(5));
        // A second `exit` leaves even if bash still lists the job as stopped.
        pty.write("exit 0\n");
        pty.write("exit 0\n");
        seen += &pty.drain(Duration::from_secs(20));
        eprintln!("as {}, the terminal showed:\n{seen}", u.name);
        let status = wait_status(child, "interactive bash");
        assert!(!seen.contains("no job control"), "as {}: {seen}", u.name);
        assert!(
            !seen.contains("cannot set terminal process group"),
            "as {}: {seen}",
            u.name
        );
        assert!(
            seen.contains("Stopped"),
            "as {}: ^Z did not stop the job: {seen}",
            u.name
        );
        assert!(status.success(), "as {}: {status:?}: {seen}", u.name);
    }
}

/// The command shares its caller's process group (so a shell keeps job control), but
/// Landlock's signal scope keeps `kill(0)` from reaching anything outside the sandbox.
#[test]
fn kill_zero_does_not_reach_the_caller() {
    for u in users() {
        let script = format!(
            "{} -q -- sh -c 'kill -USR1 0'; echo survived $?",
            sbx_bin().display()
        );
        let c = user_sh(u, &script);
        let o = output(c);
        assert_eq!(
            stdout(&o),
            format!("survived {}\n", 128 + libc::SIGUSR1),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
    }
}

#[test]
fn killing_the_caller_kills_the_sandbox() {
    for u in users() {
        let marker = format!("1000.{}", unique());
        // `; true` keeps sh from exec'ing sbx: sh stays sbx's parent.
        let script = format!(
            "{} -q -- sh -c 'echo ready; exec sleep {marker}'; true",
            sbx_bin().display()
        );
        let mut child = spawn_until(
            user_sh(u, &script).stderr(Stdio::null()),
            "ready",
            Duration::from_secs(20),
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let left = wait_gone(&marker, Duration::from_secs(1));
        assert!(
            left.is_empty(),
            "as {}: left running after SIGKILL of sbx's caller: {left:?}",
            u.name
        );
    }
}

/// PID 1 holds nothing the command could use: no capability, no descriptor, not
/// dumpable; and the command has a session keyring of its own.
#[test]
fn pid1_and_the_keyring_give_nothing_away() {
    let probe = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                 print(libc.syscall(250, 0, -3, 1))"; // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create)
    for u in users() {
        let out = sh(
            u,
            &["--cap-add", "SYS_PTRACE"],
            "grep -E '^Cap(Prm|Eff)' /proc/1/status; ls /proc/1/fd >/dev/null 2>&1 || echo fd-denied",
        );
        assert_eq!(
            out, "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nfd-denied\n",
            "as {}",
            u.name
        );
        // The keyring calls are refused by the default seccomp policy; with seccomp
        // off, the sandbox still has a session keyring of its own.
        let fx = Fixture::new(u, "keyring");
        let off = fx.file(
            "off.toml",
            "version = 1\ninclude = [\"minimal\"]\nseccomp = \"off\"\n",
            u,
        );
        let script = format!(
            "python3 -c '{probe}'; {sbx} -q -- python3 -c '{probe}'; {sbx} -q --profile {off} -- python3 -c '{probe}' 2>&1",
            sbx = sbx_bin().display(),
            off = off.display()
        );
        let o = output(user_sh(u, &script));
        let out = stdout(&o);
        let ids: Vec<i64> = out.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(ids.len(), 3, "{out}{}", stderr(&o));
        assert!(ids[0] > 0, "outside: {ids:?}");
        assert_eq!(ids[1], -1, "as {}: keyctl is refused by default", u.name);
        assert!(
            ids[2] > 0 && ids[2] != ids[0],
            "as {}: the sandbox shares the caller's session keyring: {ids:?}",
            u.name
        );
        // (sbx's stderr is on stdout for that last run.)
        assert!(
            out.contains("warning") && out.contains("seccomp"),
            "off is announced even with -q: {out}"
        );
    }
}

/// PID 1 keeps no descriptor sbx's caller gave it (nor sbx's own): seen from the host
/// (as root, which may read a non-dumpable process's /proc/PID/fd), PID 1 holds only
/// 0–2 and the gate to the command (3); the command only its stdio.
#[test]
fn pid1_keeps_no_inherited_descriptor() {
    if !is_root() {
        skip(
            Lacking::Setup,
            "reading PID 1's /proc/PID/fd from the host needs root",
        );
        return;
    }
    for u in users() {
        let fx = Fixture::new(u, "fds");
        let secret = fx.file("inherited.txt", "x", u);
        let marker = format!("fds{}", unique());
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--info-fd",
                "9",
                "--",
                "sh",
                "-c",
                &format!("echo {marker}; exec sleep 600"),
            ],
        );
        let held = std::fs::File::open(&secret).unwrap();
        let info = fx.path.join("info.json");
        let info_file = std::fs::File::create(&info).unwrap();
        use std::os::fd::AsRawFd;
        let (held_fd, info_fd) = (held.as_raw_fd(), info_file.as_raw_fd());
        // SAFETY: dup2 between fork and exec, async-signal-safe.
        unsafe {
            c.pre_exec(move || {
                // fd 7: a file the caller left open (not close-on-exec); fd 9: --info-fd.
                // Both are first copied above 100: either may itself be 7 or 9 in this
                // multithreaded test process, and dup2 onto it would lose it.
                let (a, b) = (
                    libc::fcntl(held_fd, libc::F_DUPFD, 100),
                    libc::fcntl(info_fd, libc::F_DUPFD, 100),
                );
                if a < 0 || b < 0 || libc::dup2(a, 7) < 0 || libc::dup2(b, 9) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        let mut child = spawn_until(&mut c, &marker, Duration::from_secs(30));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let v: serde_json::Value = loop {
            if let Ok(v) = serde_json::from_str(&std::fs::read_to_string(&info).unwrap_or_default())
            {
                break v;
            }
            assert!(std::time::Instant::now() < deadline, "no info object");
            std::thread::yield_now();
        };
        let pid1 = v["child-pid"].as_i64().unwrap();
        let fds = |pid: i64| -> Vec<(i32, String)> {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .flatten()
                .map(|e| {
                    let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
                    let to = std::fs::read_link(e.path())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    (n, to)
                })
                .collect()
        };
        let p1 = fds(pid1);
        assert!(
            p1.iter().all(|(n, _)| *n <= 3),
            "as {}: PID 1 holds {p1:?}",
            u.name
        );
        assert!(
            !p1.iter().any(|(_, to)| to.contains("inherited.txt")),
            "as {}: {p1:?}",
            u.name
        );
        let children =
            std::fs::read_to_string(format!("/proc/{pid1}/task/{pid1}/children")).unwrap();
        let cmd: i64 = children.split_whitespace().next().unwrap().parse().unwrap();
        let c1 = fds(cmd);
        assert!(
            c1.iter().all(|(n, _)| *n <= 2),
            "as {}: the command holds {c1:?}",
            u.name
        );
        child.kill().unwrap();
        child.wait().unwrap();
        drop(held);
    }
}

/// The window between PID 1's birth and its PR_SET_PDEATHSIG: a launcher that dies
/// there sends no signal, so PID 1 re-checks the launcher's pidfd and leaves. strace
/// holds PID 1 just before that prctl (delay injection, per tracee: each process's
/// first prctl), the test kills the launcher in the window, and the trace shows
/// PID 1 then makes no namespace (`unshare`) and exits. Without the re-check it
/// would build the sandbox until it first spoke to the dead launcher.
#[test]
fn the_launcher_dying_before_pid1_s_pdeathsig_stops_pid1() {
    if !std::path::Path::new("/usr/bin/strace").exists() {
        return skip(
            Lacking::Setup,
            "strace is missing (tests/setup.sh installs it)",
        );
    }
    for u in users() {
        let log = std::env::temp_dir().join(format!("sbx-pdeathsig-{}.log", unique()));
        let sbx = sbx_bin();
        let mut c = as_user(u, "/usr/bin/strace");
        c.args(["-f", "-qq", "-o"])
            .arg(&log)
            .args([
                "-e",
                "trace=prctl,unshare,clone,clone3,exit_group",
                "-e",
                "inject=prctl:delay_enter=3000000:when=1",
            ])
            .arg(&sbx)
            // The single-id map is PID 1's own first step: nothing waits on the
            // launcher before the sandbox is built.
            .args(["-q", "--ids", "single", "--", "true"])
            .current_dir("/tmp")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let strace = c.spawn().unwrap();
        // strace's child is the launcher; the launcher's is PID 1, held in its
        // first prctl for 3 s.
        let children = |p: i32| -> Vec<i32> {
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let start = std::time::Instant::now();
        let (launcher, pid1) = loop {
            let l = children(strace.id() as i32).first().copied();
            if let Some(p1) = l.and_then(|l| children(l).first().copied()) {
                break (l.unwrap(), p1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "as {}: PID 1 never appeared",
                u.name
            );
            std::thread::yield_now();
        };
        // SAFETY: killing the launcher, a process of ours (as root) or of the user.
        assert_eq!(unsafe { libc::kill(launcher, libc::SIGKILL) }, 0);
        let st = wait_status(strace, "strace");
        let trace = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        // Lines start with the pid, padded to the widest one seen.
        let of = |pid: i32| -> Vec<&str> {
            trace
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(pid.to_string().as_str()))
                .collect()
        };
        let mine = of(pid1);
        // strace writes the held call as "<unfinished ...>", then "resumed ... (DELAYED)".
        assert!(
            mine.iter().any(|l| l.contains("prctl(PR_SET_PDEATHSIG"))
                && mine.iter().any(|l| l.contains("(DELAYED)")),
            "as {}: PID 1 was held at its prctl: {trace}",
            u.name
        );
        assert!(
            of(launcher)
                .iter()
                .any(|l| l.contains("+++ killed by SIGKILL")),
            "as {}: the launcher died in the window: {trace}",
            u.name
        );
        assert!(
            !mine.iter().any(|l| l.contains("unshare(")),
            "as {}: PID 1 went on building the sandbox after its launcher died: {trace}",
            u.name
        );
        assert!(
            mine.iter().any(|l| l.contains("exit_group(125)")),
            "as {}: PID 1 left as a setup failure: {trace}",
            u.name
        );
        assert!(!st.success());
    }
}

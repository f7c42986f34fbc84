//! Hardening seen from both sides, with the static probe (tests/probe/probe.c) making
//! the calls no shell tool makes: the x32 and i386 entries, Landlock's filesystem
//! rules against a descriptor passed in from the host, its scopes against a host
//! abstract socket and the caller's process group, TCP port rules, the caller's
//! session keyring, `strict` seccomp, and what `--require` does where a layer is
//! missing. Every attack has a control run with the layer off that shows it would
//! otherwise work.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::time::Duration;

use common::*;

/// A profile file: `default` with `extra` lines.
fn profile(fx: &Fixture, u: &User, name: &str, extra: &str) -> String {
    fx.file(
        name,
        &format!("version = 1\ninclude = [\"default\"]\n{extra}\n"),
        u,
    )
    .to_string_lossy()
    .into_owned()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_and_the_i386_entry_cannot_go_around_the_filter() {
    let probe = probe_bin();
    let p = probe.to_str().unwrap();
    for u in users() {
        // getpid through the x32 ABI (39 with bit 30 set): refused by the filter.
        let o = run(u, &["-q", "--ro-bind", p, "--", p, "x32", "39"]);
        assert_eq!(stdout(&o), "EPERM\n", "as {}: {}", u.name, stderr(&o));
        // The i386 entry: the process is killed (SIGSYS) before the call runs.
        let o = run(u, &["-q", "--ro-bind", p, "--", p, "int80"]);
        assert_eq!(
            code(&o),
            128 + libc::SIGSYS,
            "as {}: {}",
            u.name,
            stdout(&o)
        );
        assert!(!stdout(&o).contains("survived"));
        // Control: without the filter the kernel itself decides.
        let fx = Fixture::new(u, "x32");
        let off = profile(&fx, u, "off.toml", "seccomp = \"off\"");
        let o = run(
            u,
            &[
                "-q",
                "--profile",
                &off,
                "--ro-bind",
                p,
                "--",
                p,
                "x32",
                "39",
            ],
        );
        assert_ne!(stdout(&o), "EPERM\n", "as {}", u.name);
        if stdout(&o) == "ENOSYS\n" {
            // The refusal above is the filter's (EPERM, not the kernel's ENOSYS), but
            // no x32 call could have gone around it here: said, not hidden.
            skip(
                Lacking::Kernel,
                "x32 control: this kernel has no x32 ABI (ENOSYS without the filter)",
            );
        }
        let o = run(
            u,
            &["-q", "--profile", &off, "--ro-bind", p, "--", p, "int80"],
        );
        if stdout(&o).starts_with("survived") {
            assert_eq!(code(&o), 0);
        } else {
            skip(
                Lacking::Kernel,
                &format!(
                    "i386 control: this kernel has no i386 entry ({:?})",
                    o.status
                ),
            );
        }
    }
}

/// A host process hands the sandbox a descriptor of a host directory the mounts do
/// not grant. Landlock's rules (derived from the mounts) make it useless; with
/// Landlock off it would read the file.
#[test]
fn a_directory_fd_passed_in_from_the_host_reaches_nothing() {
    let probe = probe_bin();
    let p = probe.to_str().unwrap();
    for u in users() {
        let fx = Fixture::new(u, "recvfd");
        fx.file("secret/data", "host-secret\n", u);
        std::fs::create_dir_all(fx.path.join("sock")).unwrap();
        fx.chown(&fx.path.join("sock"), u);
        // The profile lives elsewhere: sbx refuses a writable bind of a profile's directory.
        let pfx = Fixture::new(u, "recvfd-profile");
        let off = profile(&pfx, u, "off.toml", "landlock = \"off\"");
        let sock = fx.path.join("sock/s");
        let secret = fx.path.join("secret");
        let mut seen = Vec::new();
        for extra in [&[][..], &["--profile", off.as_str()][..]] {
            let _ = std::fs::remove_file(&sock);
            // The host side, as the same user: listen, say so, pass one O_PATH fd.
            let server = format!(
                "import os, socket\ns = socket.socket(socket.AF_UNIX)\ns.bind({sock:?})\ns.listen()\n\
                 print('ready', flush=True)\nc, _ = s.accept()\n\
                 socket.send_fds(c, [b'x'], [os.open({secret:?}, os.O_PATH | os.O_DIRECTORY)])\nc.close()\n",
                sock = sock.to_str().unwrap(),
                secret = secret.to_str().unwrap()
            );
            let mut srv = spawn_until(
                as_user(u, "python3").args(["-c", &server]),
                "ready",
                Duration::from_secs(20),
            );
            let mut args = vec!["-q"];
            args.extend_from_slice(extra);
            let sockdir = format!("{}:/sock", fx.path.join("sock").display());
            args.extend([
                "--bind",
                &sockdir,
                "--ro-bind",
                p,
                "--",
                p,
                "recvfd",
                "/sock/s",
                "data",
            ]);
            let o = run(u, &args);
            let _ = srv.kill();
            let _ = srv.wait();
            seen.push(stdout(&o));
        }
        assert_eq!(
            seen[0], "EACCES\n",
            "as {}: Landlock lets a host fd through",
            u.name
        );
        assert_eq!(
            seen[1], "read host-secret\n",
            "as {}: the control failed",
            u.name
        );
    }
}

/// A host service on an abstract unix socket (as X11 and D-Bus use): unreachable with
/// the host's network shared (Landlock scope) and in the sandbox's own network.
#[test]
fn host_abstract_sockets_are_out_of_reach() {
    let probe = probe_bin();
    let p = probe.to_str().unwrap();
    let name = format!("sbx-test-{}", unique());
    let listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    for u in users() {
        let fx = Fixture::new(u, "abstract");
        let off = profile(&fx, u, "off.toml", "landlock = \"off\"");
        let attempt = |extra: &[&str]| {
            let mut args = vec!["-q"];
            args.extend_from_slice(extra);
            args.extend(["--ro-bind", p, "--", p, "abstract", &name]);
            stdout(&run(u, &args))
        };
        assert_eq!(attempt(&["--net", "host"]), "EPERM\n", "as {}", u.name);
        assert_eq!(attempt(&[]), "ECONNREFUSED\n", "as {}", u.name);
        // Control: the host network without the scope reaches it.
        assert_eq!(
            attempt(&["--net", "host", "--profile", &off]),
            "ok 0\n",
            "as {}",
            u.name
        );
    }
    drop(listener);
}

/// `kill(0)` from inside targets the caller's process group (the command shares it
/// for job control): refused by the signal scope, delivered without it.
#[test]
fn signals_do_not_leave_the_sandbox() {
    let probe = probe_bin();
    for u in users() {
        let fx = Fixture::new(u, "signal");
        let off = profile(&fx, u, "off.toml", "landlock = \"off\"");
        let script = |extra: &str| {
            format!(
                "trap 'echo caller-got-USR1' USR1; {sbx} -q {extra} --ro-bind {p} -- {p} kill 0 {sig}; echo status $?",
                sbx = sbx_bin().display(),
                p = probe.display(),
                sig = libc::SIGUSR1
            )
        };
        // A process group of its own: kill(0) in the control run must not reach the
        // test harness or the sandboxes other tests are running.
        let caller = |s: String| {
            let mut c = user_sh(u, &s);
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            output(c)
        };
        let o = caller(script(""));
        assert!(
            stdout(&o).ends_with("status 0\n") && !stdout(&o).contains("caller-got"),
            "as {}: {}{}",
            u.name,
            stdout(&o),
            stderr(&o)
        );
        let o = caller(script(&format!("--profile {off}")));
        assert!(
            stdout(&o).contains("caller-got-USR1"),
            "as {}: the control did not reach the caller: {}",
            u.name,
            stdout(&o)
        );
    }
}

/// A key the user added to their session keyring before starting sbx cannot be read
/// inside: keyctl is refused by default, and with seccomp off the command still has
/// a session keyring of its own, so it does not possess the key.
#[test]
fn the_callers_session_keyring_is_out_of_reach() {
    let probe = probe_bin();
    for u in users() {
        let fx = Fixture::new(u, "keys");
        let off = profile(&fx, u, "off.toml", "seccomp = \"off\"");
        let script = format!(
            "{p} readkey $SBX_TEST_KEY; {sbx} -q --ro-bind {p} -- {p} readkey $SBX_TEST_KEY; \
             {sbx} -q --profile {off} --ro-bind {p} -- {p} readkey $SBX_TEST_KEY 2>/dev/null",
            p = probe.display(),
            sbx = sbx_bin().display()
        );
        let mut c = as_user(u, &probe);
        c.args(["addkey", "sbx-test", "key-secret", "sh", "-c", &script]);
        let o = output(c);
        let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
        assert_eq!(
            lines.len(),
            3,
            "as {}: {}{}",
            u.name,
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(lines[0], "read key-secret", "the control outside");
        assert_eq!(
            lines[1], "EPERM",
            "as {}: keyctl under the default policy",
            u.name
        );
        assert!(
            lines[2] == "EACCES" || lines[2] == "ENOKEY",
            "as {}: read the caller's key with seccomp off: {}",
            u.name,
            lines[2]
        );
    }
}

#[test]
fn tcp_port_rules_limit_bind_and_connect() {
    let script = "import socket, errno\nkeep = []\n\
                  def go(f, port):\n    s = socket.socket(); keep.append(s)\n    \
                      try:\n        getattr(s, f)(('127.0.0.1', port)); s.listen() if f == 'bind' else None; return 'ok'\n    \
                      except OSError as e:\n        return errno.errorcode[e.errno]\n\
                  print(go('bind', 4101), go('bind', 4103), go('connect', 4101), go('connect', 4102))";
    for u in users() {
        let fx = Fixture::new(u, "ports");
        let ports = profile(
            &fx,
            u,
            "ports.toml",
            "tcp_bind = [4101]\ntcp_connect = [4102]",
        );
        let o = run(
            u,
            &["-q", "--profile", &ports, "--", "python3", "-c", script],
        );
        // 4101 is bound but may not be connected to; 4102 may be (nothing listens).
        assert_eq!(
            stdout(&o),
            "ok EACCES EACCES ECONNREFUSED\n",
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        let o = run(u, &["-q", "--", "python3", "-c", script]);
        assert_eq!(
            stdout(&o),
            "ok ok ok ECONNREFUSED\n",
            "as {}: no rules by default",
            u.name
        );
    }
}

#[test]
fn strict_seccomp_refuses_more_and_programs_still_work() {
    let script = "import ctypes, socket, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                  try:\n    socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET); alg = 'ok'\n\
                  except OSError as e:\n    alg = os.strerror(e.errno)\n\
                  pid = os.getpid()\n\
                  r = libc.syscall(312, pid, pid, 0, 0, 0)\n\
                  print(alg, 'kcmp', 'ok' if r >= 0 else os.strerror(ctypes.get_errno()))";
    for u in users() {
        let fx = Fixture::new(u, "strict");
        let strict = profile(&fx, u, "strict.toml", "seccomp = \"strict\"");
        let o = run(
            u,
            &["-q", "--profile", &strict, "--", "python3", "-c", script],
        );
        assert_eq!(
            stdout(&o),
            "Address family not supported by protocol kcmp Operation not permitted\n",
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        let o = run(u, &["-q", "--", "python3", "-c", script]);
        if stdout(&o).starts_with("ok ") {
            assert_eq!(
                stdout(&o),
                "ok kcmp ok\n",
                "as {}: the default allows both",
                u.name
            );
        } else {
            skip(
                Lacking::Kernel,
                &format!(
                    "AF_VSOCK control: this kernel has no vsock ({})",
                    stdout(&o)
                ),
            );
            assert!(
                stdout(&o).ends_with("kcmp ok\n"),
                "as {}: {}",
                u.name,
                stdout(&o)
            );
        }
        let out = sh(
            u,
            &["--profile", &strict],
            "set -e; bash -c 'echo $((6*7))'; cd /tmp; printf 'int main(void){return 3;}' > t.c; \
             gcc -o t t.c; ./t || echo exit $?; python3 -c 'import subprocess; print(subprocess.run([\"true\"]).returncode)'",
        );
        assert_eq!(out, "42\nexit 3\n0\n", "as {}", u.name);
    }
}

/// A kernel without Landlock, imitated by the probe (landlock_create_ruleset answers
/// ENOSYS under a filter of its own): best effort says so, `--require landlock` and
/// `landlock = "require"` stop with 125, and `--require seccomp` refuses a profile that
/// turns seccomp off. The probe sets no_new_privs, which disables the setuid helpers:
/// a single id is mapped.
#[test]
fn a_missing_layer_is_announced_or_required() {
    let probe = probe_bin();
    for u in users() {
        let fx = Fixture::new(u, "require");
        let single = profile(&fx, u, "single.toml", "ids = \"single\"");
        let req = profile(
            &fx,
            u,
            "req.toml",
            "ids = \"single\"\nlandlock = \"require\"",
        );
        let no_seccomp = profile(&fx, u, "nosec.toml", "seccomp = \"off\"");
        let without = |args: &[&str]| {
            let mut c = as_user(u, &probe);
            c.arg("nolandlock").arg(sbx_bin()).args(args);
            output(c)
        };
        let o = without(&["-q", "--profile", &single, "--", "echo", "ran"]);
        assert_eq!(stdout(&o), "ran\n", "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains("warning: not enforced: Landlock"),
            "best effort is announced even with -q: {}",
            stderr(&o)
        );
        let o = without(&[
            "--require",
            "landlock",
            "--profile",
            &single,
            "--",
            "echo",
            "ran",
        ]);
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stdout(&o));
        assert!(stderr(&o).contains("--require landlock"), "{}", stderr(&o));
        assert_eq!(stdout(&o), "");
        let o = without(&["--profile", &req, "--", "echo", "ran"]);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("req.toml:4:"),
            "names the line: {}",
            stderr(&o)
        );
        let o = without(&["--dry-run", "--profile", &single, "true"]);
        let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(
            plan["landlock"]["kernel_abi"].is_null(),
            "{}",
            plan["landlock"]
        );
        // With Landlock present, requiring it changes nothing.
        let o = run(
            u,
            &[
                "-q",
                "--require",
                "landlock",
                "--require",
                "seccomp",
                "--",
                "echo",
                "ran",
            ],
        );
        assert_eq!(stdout(&o), "ran\n", "as {}: {}", u.name, stderr(&o));
        let o = run(
            u,
            &["--require", "seccomp", "--profile", &no_seccomp, "true"],
        );
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("nosec.toml:3:"), "{}", stderr(&o));
    }
}

/// `-v` lists what each layer enforces; `--dry-run` carries the same in the plan.
#[test]
fn verbose_and_dry_run_report_what_is_enforced() {
    for u in users() {
        let o = run(u, &["-v", "--", "true"]);
        let err = stderr(&o);
        assert!(
            err.contains("enforced: seccomp: default policy, 46 syscalls refused"),
            "{err}"
        );
        assert!(
            err.contains("enforced: landlock: kernel ABI") && err.contains("scoped"),
            "{err}"
        );
        let o = run(u, &["--dry-run", "true"]);
        let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(plan["landlock"]["mode"], "default");
        let rules = plan["landlock"]["fs_rules"].as_array().unwrap();
        let usr = rules.iter().find(|r| r["path"] == "/usr").unwrap();
        assert_eq!(
            usr["access"],
            serde_json::json!(["execute", "read-file", "read-dir"])
        );
        assert_eq!(plan["enforcement"].as_array().unwrap().len(), 2);
    }
}

/// A `cargo build` of a small crate, offline, under the default policy and Landlock.
#[test]
fn cargo_build_works_inside() {
    if !std::path::Path::new("/usr/bin/cargo").exists() {
        skip(
            Lacking::Setup,
            "no /usr/bin/cargo (tests/setup.sh installs Debian's cargo)",
        );
        return;
    }
    for u in users() {
        let out = sh(
            u,
            &[],
            "set -e; cd /tmp && cargo new -q --vcs none hello && cd hello && \
             cargo build -q --offline 2>&1 && ./target/debug/hello",
        );
        assert_eq!(out, "Hello, world!\n", "as {}", u.name);
    }
}

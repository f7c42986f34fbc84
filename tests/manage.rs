//! Running sandboxes, as the test users: names and records, --list, --enter,
//! --inspect, --kill, --info-fd/--status-fd, and records that lie.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `--list` removes records it cannot verify, so tests that plant records do not run
/// beside tests that list.
static RECORDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn records_lock() -> std::sync::MutexGuard<'static, ()> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start a named sandbox that leaves a marker file in its /tmp and waits; the caller
/// waits for it.
#[allow(clippy::zombie_processes)]
fn start(u: &User, name: &str, extra: &[&str]) -> Child {
    let mut args = vec!["-q", "--name", name];
    args.extend_from_slice(extra);
    args.extend([
        "--",
        "sh",
        "-c",
        "echo inside > /tmp/marker; exec sleep 1000",
    ]);
    let child = sbx_cmd(u, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The record is written once PID 1 has started the command: wait for it to show.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = list(u);
        if l.iter().any(|s| s["name"] == name) {
            return child;
        }
        if Instant::now() > deadline {
            let mut child = child;
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            let dir = format!("/tmp/sbx-{}", u.uid);
            let files: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "as {}: {name} never listed: {}; --list says {}; {dir}: {files:?}",
                u.name,
                stderr(&o),
                stderr(&run(u, &["--list"]))
            );
        }
        std::thread::yield_now();
    }
}

fn list(u: &User) -> Vec<serde_json::Value> {
    let o = run(u, &["--list", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn inspect(u: &User, what: &str) -> serde_json::Value {
    let o = run(u, &["--inspect", what, "--json"]);
    assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn all_shared(v: &serde_json::Value) -> Vec<bool> {
    v["namespaces"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["shared_with_host"].as_bool().unwrap())
        .collect()
}

#[test]
fn two_named_sandboxes_listed_entered_inspected_and_killed() {
    let _g = records_lock();
    for u in users() {
        let (a, b) = (format!("a-{}", unique()), format!("b-{}", unique()));
        let mut sa = start(u, &a, &["--hostname", "box-a"]);
        let mut sb = start(u, &b, &["--net", "host"]);
        let l = list(u);
        let row = |n: &str| l.iter().find(|s| s["name"] == n).unwrap().clone();
        assert_eq!(row(&a)["profile"], "default");
        assert_eq!(row(&a)["net"], "none");
        assert_eq!(row(&b)["net"], "host");
        assert!(row(&a)["pid"].as_i64().unwrap() > 1);
        assert_eq!(row(&a)["command"][0], "sh");
        let text = stdout(&run(u, &["--list"]));
        assert!(
            text.starts_with("NAME") && text.contains(&a) && text.contains(&b),
            "{text}"
        );

        // --enter sees the sandbox's processes, hostname and files, with no capabilities.
        let o = run(
            u,
            &[
                "--enter",
                &a,
                "--",
                "sh",
                "-c",
                "hostname; cat /tmp/marker; cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -o 'sleep 1000' | head -1; \
                 grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t'; exit 3",
            ],
        );
        assert_eq!(code(&o), 3, "as {}: {}", u.name, stderr(&o));
        assert_eq!(
            stdout(&o),
            "box-a\ninside\nsleep 1000\nCapEff:0000000000000000\nCapBnd:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n",
            "as {}",
            u.name
        );

        // --inspect: the sandbox's namespaces are its own; a host process's are shared.
        let v = inspect(u, &a);
        assert!(all_shared(&v).iter().all(|s| !s), "as {}: {v}", u.name);
        assert_eq!(v["no_new_privs"], true);
        assert_eq!(v["seccomp"], "filter");
        assert_eq!(v["capabilities"]["CapEff"], "0000000000000000");
        let host = inspect(u, &sa.id().to_string());
        assert!(
            all_shared(&host).iter().all(|s| *s),
            "as {}: {host}",
            u.name
        );
        let vb = inspect(u, &b);
        assert_eq!(vb["namespaces"]["net"]["shared_with_host"], true);
        assert_eq!(vb["namespaces"]["pid"]["shared_with_host"], false);

        // --kill: gone, with its record.
        let o = run(u, &["--kill", &a]);
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        let status = sa.wait().unwrap();
        assert_eq!(status.code(), Some(128 + libc::SIGTERM), "as {}", u.name);
        assert!(list(u).iter().all(|s| s["name"] != a.as_str()));
        let o = run(u, &["--kill", &b, "--signal", "KILL"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        sb.wait().unwrap();
        assert!(list(u).is_empty(), "as {}: {:?}", u.name, list(u));
        // A second sandbox under a running name is refused.
        let mut sc = start(u, &a, &[]);
        let o = run(u, &["--name", &a, "--", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("is running"), "{}", stderr(&o));
        assert_eq!(code(&run(u, &["--kill", &a])), 0);
        sc.wait().unwrap();
    }
}

/// Records are checked against the processes: one naming a host process that is not
/// a sandbox, or a sandbox's pid with another start time (a recycled pid), is refused
/// and nothing is signalled or joined.
#[test]
fn forged_and_stale_records_are_refused() {
    let _g = records_lock();
    for u in users() {
        // The harness runs sbx without XDG_RUNTIME_DIR: records go to the fallback.
        let dir = std::path::PathBuf::from(format!("/tmp/sbx-{}", u.uid));
        let name = format!("real-{}", unique());
        let mut s = start(u, &name, &[]);
        let real: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        // A host process of the user's, claiming to be a sandbox.
        let mut victim = user_sh(u, "exec sleep 1000").spawn().unwrap();
        let vpid = victim.id() as i64;
        let start_of = |pid: i64| -> u64 {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            s.rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .nth(19)
                .unwrap()
                .parse()
                .unwrap()
        };
        let mut forged = real.clone();
        forged["name"] = "forged".into();
        for k in ["pid1", "anchor"] {
            forged[k] = vpid.into();
        }
        for k in ["pid1_start", "anchor_start"] {
            forged[k] = start_of(vpid).into();
        }
        let mut stale = real.clone();
        stale["name"] = "stale".into();
        stale["pid1_start"] = (real["pid1_start"].as_u64().unwrap() + 1).into();
        for (n, v) in [("forged", &forged), ("stale", &stale)] {
            let p = dir.join(format!("{n}.json"));
            std::fs::write(&p, v.to_string()).unwrap();
            if is_root() {
                std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
            }
            for action in [
                &["--kill", n][..],
                &["--enter", n, "--", "true"][..],
                &["--inspect", n][..],
            ] {
                let o = run(u, action);
                assert_eq!(
                    code(&o),
                    125,
                    "as {}: {action:?} accepted a {n} record",
                    u.name
                );
                assert!(stderr(&o).contains("refusing its record"), "{}", stderr(&o));
            }
        }
        assert!(
            victim.try_wait().unwrap().is_none(),
            "the host process was signalled"
        );
        victim.kill().unwrap();
        victim.wait().unwrap();
        // --list drops both lies and keeps the real one.
        let names: Vec<String> = list(u)
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec![name.clone()], "as {}", u.name);
        assert_eq!(code(&run(u, &["--kill", &name])), 0);
        s.wait().unwrap();
    }
}

#[test]
fn other_users_sandboxes_are_out_of_reach() {
    let _g = records_lock();
    let us = users();
    if us.len() < 2 {
        skip(Lacking::Setup, "needs the two test users (run as root)");
        return;
    }
    let (owner, other) = (&us[0], &us[1]);
    let name = format!("mine-{}", unique());
    let mut s = start(owner, &name, &[]);
    let pid = list(owner)[0]["pid"].as_i64().unwrap().to_string();
    assert!(list(other).iter().all(|r| r["name"] != name.as_str()));
    for action in [
        &["--kill", name.as_str()][..],
        &["--enter", &name, "--", "true"][..],
    ] {
        assert_eq!(code(&run(other, action)), 125, "{action:?}");
    }
    let o = run(other, &["--inspect", &pid]);
    assert_eq!(code(&o), 125, "{}", stdout(&o));
    assert!(s.try_wait().unwrap().is_none(), "still running");
    assert_eq!(code(&run(owner, &["--kill", &name])), 0);
    s.wait().unwrap();
}

#[test]
fn info_and_status_fds_describe_the_sandbox() {
    let _g = records_lock();
    for u in users() {
        let mut info = [0; 2];
        let mut status = [0; 2];
        // SAFETY: two-element arrays for pipe(2).
        unsafe {
            assert_eq!(libc::pipe(info.as_mut_ptr()), 0);
            assert_eq!(libc::pipe(status.as_mut_ptr()), 0);
        }
        let (iw, sw) = (info[1], status[1]);
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--info-fd",
                "3",
                "--status-fd",
                "4",
                "--",
                "sh",
                "-c",
                "exit 3",
            ],
        );
        // SAFETY: fcntl, dup2 and close only, between fork and exec. Both are first
        // copied above 100: either may itself be 3 or 4 in this multithreaded test
        // process, and dup2 onto it would lose it.
        unsafe {
            c.pre_exec(move || {
                let (a, b) = (
                    libc::fcntl(iw, libc::F_DUPFD, 100),
                    libc::fcntl(sw, libc::F_DUPFD, 100),
                );
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // SAFETY: closing our copies of the write ends.
        unsafe {
            libc::close(iw);
            libc::close(sw);
        }
        let o = wait_output(child, "info-fd");
        assert_eq!(o.status.code(), Some(3), "as {}: {}", u.name, stderr(&o));
        let read_all = |fd: i32| {
            let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s).unwrap();
            s
        };
        let i: serde_json::Value = serde_json::from_str(read_all(info[0]).trim()).unwrap();
        assert!(i["child-pid"].as_i64().unwrap() > 1, "{i}");
        // Every namespace, the command's own even though it ended before the
        // launcher could look at it (PID 1's, read while PID 1 waits).
        let host_pid_ns =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata("/proc/self/ns/pid").unwrap());
        for n in ["user", "mnt", "pid", "ipc", "uts", "net", "cgroup"] {
            assert!(i["namespaces"][n].as_u64().is_some(), "{n}: {i}");
        }
        assert_ne!(i["namespaces"]["pid"].as_u64(), Some(host_pid_ns), "{i}");
        let s: serde_json::Value = serde_json::from_str(read_all(status[0]).trim()).unwrap();
        assert_eq!(s["exit_code"], 3, "{s}");
    }
}

/// Each check of a record's verification refuses on its own: every forged record
/// here differs from a real one in exactly one respect, and the refusal names that
/// check (so removing any one check fails this test).
#[test]
fn each_record_check_refuses_on_its_own() {
    let _g = records_lock();
    for u in users() {
        let dir = std::path::PathBuf::from(format!("/tmp/sbx-{}", u.uid));
        let name = format!("real-{}", unique());
        let mut s = start(u, &name, &[]);
        let real: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let pid1 = real["pid1"].as_i64().unwrap();
        let anchor = real["anchor"].as_i64().unwrap();
        let start_of = |pid: i64| -> u64 {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            s.rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .nth(19)
                .unwrap()
                .parse()
                .unwrap()
        };
        // A process of the user's that is PID 1 of no pid namespace: the host shell
        // that runs sbx's own child... here, a plain host process.
        let mut host_proc = user_sh(u, "exec sleep 1000").spawn().unwrap();
        let hpid = host_proc.id() as i64;
        // A PID 1 that is not the user's: the other test user's sandbox (as root only).
        let others: Vec<&User> = users().iter().filter(|o| o.uid != u.uid).collect();
        let mut cases: Vec<(&str, serde_json::Value, &str)> = Vec::new();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = real.clone();
            f(&mut v);
            v
        };
        cases.push((
            "uid",
            with(&|v| v["uid"] = (u.uid + 1).into()),
            "not a record of yours",
        ));
        cases.push((
            "pid1-start",
            with(&|v| v["pid1_start"] = (v["pid1_start"].as_u64().unwrap() + 1).into()),
            "is another process now",
        ));
        cases.push((
            "pid1-not-init",
            with(&|v| {
                v["pid1"] = hpid.into();
                v["pid1_start"] = start_of(hpid).into();
            }),
            "is not the PID 1 of a sandbox",
        ));
        cases.push((
            "anchor-start",
            with(&|v| v["anchor_start"] = (v["anchor_start"].as_u64().unwrap() + 1).into()),
            "is not the sandbox's command",
        ));
        cases.push((
            "anchor-not-child",
            with(&|v| {
                v["anchor"] = hpid.into();
                v["anchor_start"] = start_of(hpid).into();
            }),
            "is not the sandbox's command",
        ));
        cases.push((
            "namespaces",
            with(&|v| {
                v["namespaces"]["uts"] = (v["namespaces"]["uts"].as_u64().unwrap() + 1).into()
            }),
            "is not in the recorded namespaces",
        ));
        let mut other_sandbox = None;
        if let Some(o) = others.first() {
            let oname = format!("theirs-{}", unique());
            let child = start(o, &oname, &[]);
            let odir = std::path::PathBuf::from(format!("/tmp/sbx-{}", o.uid));
            let theirs: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(odir.join(format!("{oname}.json"))).unwrap(),
            )
            .unwrap();
            cases.push((
                "not-yours",
                with(&|v| {
                    for k in ["pid1", "pid1_start", "anchor", "anchor_start", "namespaces"] {
                        v[k] = theirs[k].clone();
                    }
                }),
                "is not yours",
            ));
            other_sandbox = Some((o, oname, child));
        }
        assert!(start_of(pid1) > 0 && start_of(anchor) > 0);
        for (tag, v, why) in &cases {
            let n = format!("forged-{tag}");
            let mut v = v.clone();
            v["name"] = n.clone().into();
            let p = dir.join(format!("{n}.json"));
            std::fs::write(&p, v.to_string()).unwrap();
            if is_root() {
                std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
            }
            let o = run(u, &["--inspect", &n]);
            assert_eq!(code(&o), 125, "as {}: {tag} accepted", u.name);
            assert!(
                stderr(&o).contains("refusing its record") && stderr(&o).contains(why),
                "as {}: {tag}: {}",
                u.name,
                stderr(&o)
            );
            let _ = std::fs::remove_file(&p);
        }
        // The real one still verifies.
        assert_eq!(code(&run(u, &["--inspect", &name])), 0);
        host_proc.kill().unwrap();
        host_proc.wait().unwrap();
        if let Some((o, oname, mut child)) = other_sandbox {
            assert_eq!(code(&run(o, &["--kill", &oname])), 0);
            child.wait().unwrap();
        }
        assert_eq!(code(&run(u, &["--kill", &name])), 0);
        s.wait().unwrap();
    }
}

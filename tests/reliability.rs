//! Reliability under load, faults and hostile input: nothing lost, nothing left
//! behind. Run as the unprivileged test users with the default profile. The tests
//! that compare the host's state before and after hold a lock, so that no other test
//! of this file changes it meanwhile.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

static HOST_STATE: Mutex<()> = Mutex::new(());

/// What must not change on the host: the mount table, the entries of /tmp that the
/// test user owns (only what sbx, run as that user, could have left: other programs
/// may use /tmp meanwhile), the user's processes and (if any) runtime directory
/// entries.
#[derive(Debug, PartialEq, Eq, Clone)]
struct HostState {
    mounts: String,
    tmp: BTreeSet<OsString>,
    runtime: BTreeSet<OsString>,
    processes: BTreeSet<i32>,
}

fn entries(dir: &str) -> BTreeSet<OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// The entries of `dir` that `uid` owns.
fn entries_of(dir: &str, uid: u32) -> BTreeSet<OsString> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default()
}

/// The user's live processes. Zombies are left out: once sbx is SIGKILLed its killed
/// children are re-parented to the machine's init, which reaps them when it will.
fn processes_of(uid: u32) -> BTreeSet<i32> {
    processes_of_uid(uid, false)
}

/// The user's processes, zombies included if `zombies`.
fn processes_of_uid(uid: u32, zombies: bool) -> BTreeSet<i32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat.rsplit(')').next()?.trim_start().starts_with('Z');
            (std::fs::metadata(e.path()).ok()?.uid() == uid && (zombies || !zombie)).then_some(pid)
        })
        .collect()
}

/// Compare field by field, so a failure says what changed.
fn assert_same(before: &HostState, after: &HostState, what: &str) {
    assert!(
        before.mounts == after.mounts,
        "{what}: the host mount table changed"
    );
    let diff = |a: &BTreeSet<OsString>, b: &BTreeSet<OsString>| -> Vec<OsString> {
        a.symmetric_difference(b).cloned().collect()
    };
    assert!(
        before.tmp == after.tmp,
        "{what}: /tmp changed: {:?}",
        diff(&before.tmp, &after.tmp)
    );
    assert!(
        before.runtime == after.runtime,
        "{what}: the runtime directory changed: {:?}",
        diff(&before.runtime, &after.runtime)
    );
    let procs: Vec<_> = before
        .processes
        .symmetric_difference(&after.processes)
        .collect();
    let cmds: Vec<String> = procs
        .iter()
        .map(|p| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default(),
            )
            .replace('\0', " ")
        })
        .collect();
    assert!(
        procs.is_empty(),
        "{what}: the user's processes changed: {procs:?} {cmds:?}"
    );
}

fn host_state(u: &User) -> HostState {
    // The harness's copy of the binary lives in /tmp: make it before the first look.
    sbx_bin();
    HostState {
        mounts: std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        tmp: entries_of("/tmp", u.uid),
        runtime: entries(&format!("/run/user/{}", u.uid)),
        processes: processes_of(u.uid),
    }
}

/// A small deterministic generator for the fault-injection delays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn two_hundred_at_once_all_succeed_with_their_own_status() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        let children: Vec<_> = (0..200)
            .map(|i| {
                sbx_cmd(u, ["-q", "--", "sh", "-c", &format!("exit {}", i % 100)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, c) in children.into_iter().enumerate() {
            let o = wait_output(c, "200 at once");
            assert_eq!(
                code(&o),
                (i % 100) as i32,
                "as {}: launch {i}: {}",
                u.name,
                stderr(&o)
            );
        }
    }
}

#[test]
fn two_thousand_in_a_row_leave_nothing_behind() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    for u in users() {
        let (fds_before, before) = (fds(), host_state(u));
        let mut times = Vec::with_capacity(2000);
        let start = Instant::now();
        for i in 0..2000 {
            let t = Instant::now();
            let st = sbx_cmd(u, ["-q", "--", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(st.success(), "as {}: launch {i}: {st:?}", u.name);
        }
        let total = start.elapsed().as_secs_f64();
        let (fds_after, after) = (fds(), host_state(u));
        assert_eq!(
            fds_before, fds_after,
            "as {}: the invoker's descriptors",
            u.name
        );
        assert_same(
            &before,
            &after,
            &format!("as {}, after 2000 launches", u.name),
        );
        let first = median(&mut times[..100].to_vec());
        let last = median(&mut times[1900..].to_vec());
        // A leak (mounts, descriptors, records) raises every launch, the fastest
        // included; a busy spell on a shared machine raises some. So the growth test
        // compares the 10th percentiles of the first and last hundred.
        let p10 = |w: &[f64]| {
            let mut v = w.to_vec();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[10]
        };
        let (first_p10, last_p10) = (p10(&times[..100]), p10(&times[1900..]));
        eprintln!(
            "as {}: 2000 launches in {total:.1} s ({:.0}/s); median first 100 {first:.2} ms, \
             last 100 {last:.2} ms; 10th percentile {first_p10:.2} and {last_p10:.2} ms",
            u.name,
            2000.0 / total
        );
        assert!(
            last_p10 <= first_p10 * 1.5 + 1.0,
            "as {}: launch time grew from {first_p10:.2} to {last_p10:.2} ms (10th percentiles)",
            u.name
        );
    }
}

#[test]
fn sigkill_at_random_moments_of_setup_leaves_nothing() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Lcg(0x5b5_2026);
    for u in users() {
        // Records other tests' killed launchers left behind go first, so that the one
        // --list below compares like with like.
        run(u, &["--list"]);
        let before = host_state(u);
        for i in 0..200 {
            let marker = format!("1000.{}", unique());
            let mut child = sbx_cmd(u, ["-q", "--", "sleep", &marker])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // A fault-injection delay across the ~3-6 ms of setup, not a wait for anything.
            std::thread::sleep(Duration::from_micros(rng.below(6000)));
            child.kill().unwrap();
            child.wait().unwrap();
            let left = wait_gone(&marker, Duration::from_secs(1));
            assert!(left.is_empty(), "as {}: try {i} left {left:?}", u.name);
        }
        // A launcher killed after it recorded its sandbox cannot remove the record: the
        // next sbx that reads the records removes the stale ones (and their directory).
        let o = run(u, &["--list", "--json"]);
        assert_eq!(stdout(&o).trim(), "[]", "as {}: {}", u.name, stderr(&o));
        assert_same(
            &before,
            &host_state(u),
            &format!("as {}, after 200 killed launches and one --list", u.name),
        );
    }
}

#[test]
fn sigterm_and_sigint_during_setup_end_cleanly() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Lcg(0x7e57);
    for u in users() {
        let before = host_state(u);
        for i in 0..60 {
            let sig = if i % 2 == 0 {
                libc::SIGTERM
            } else {
                libc::SIGINT
            };
            let marker = format!("1000.{}", unique());
            let child = sbx_cmd(u, ["-q", "--", "sleep", &marker])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rng.below(6000)));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, sig) };
            let o = wait_output(child, "signal during setup");
            // Either sbx itself died of it (before it blocks signals) or it passed it to
            // the command: the caller sees 128+N either way.
            let status = o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap());
            assert_eq!(status, 128 + sig, "as {}: try {i}: {}", u.name, stderr(&o));
            let left = wait_gone(&marker, Duration::from_secs(1));
            assert!(left.is_empty(), "as {}: try {i} left {left:?}", u.name);
        }
        assert_same(
            &before,
            &host_state(u),
            &format!("as {}, after signals during setup", u.name),
        );
    }
}

#[test]
fn a_fork_bomb_is_contained_and_the_host_stays_responsive() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        let marker = format!("bomb{}", unique());
        // The shell stays (waiting for a sleep started before the bomb, which may leave
        // no room to fork one later) while the bomb spreads, so only the limits and
        // --timeout end it. The bomb runs in a subshell the shell forked before it:
        // the shell itself forks nothing once the bomb has taken every slot (a shell
        // that cannot fork exits 2, ending the sandbox before --timeout).
        let bomb = format!(": {marker}; sleep 100 & (f() {{ f | f & }}; f) & wait");
        // RLIMIT_NPROC counts every process of the user, zombies included: let what
        // earlier tests ran as this user (browsers, pasta) finish dying and be reaped.
        let settle = Instant::now() + Duration::from_secs(20);
        while !processes_of_uid(u.uid, true).is_empty() && Instant::now() < settle {
            std::thread::yield_now();
        }
        let started = Instant::now();
        let child = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                "untrusted",
                "--timeout",
                "4",
                "--",
                "sh",
                "-c",
                &bomb,
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        // The host can still start processes promptly while the bomb runs.
        let mut worst = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            assert!(std::process::Command::new("true")
                .status()
                .unwrap()
                .success());
            worst = worst.max(t.elapsed());
        }
        let o = wait_output(child, "fork bomb");
        assert_eq!(code(&o), 124, "as {}: stopped by --timeout", u.name);
        assert!(
            worst < Duration::from_secs(1),
            "as {}: the host took {worst:?} to start a process",
            u.name
        );
        let left = wait_gone(&marker, Duration::from_secs(1));
        assert!(
            left.is_empty(),
            "as {}: {} bomb processes left",
            u.name,
            left.len()
        );
    }
}

#[test]
fn filling_tmp_gives_enospc_inside_only() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        let out = sh(
            u,
            &["--profile", "untrusted"],
            // Files below the profile's 64 MiB fsize limit, until its 64 MiB /tmp is full.
            "for i in 1 2 3; do head -c 30000000 /dev/zero > /tmp/fill$i 2>/dev/shm/err || { echo stopped at $i; break; }; done; grep -c 'No space left' /dev/shm/err",
        );
        assert_eq!(out, "stopped at 3\n1\n", "as {}", u.name);
        assert!(!std::path::Path::new("/tmp/fill3").exists());
    }
}

#[test]
fn closed_and_redirected_stdio_work() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        // sbx started with 0, 1 and 2 closed.
        let mut c = sbx_cmd(u, ["-q", "--", "sh", "-c", "exit 3"]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::close(0);
                libc::close(1);
                libc::close(2);
                Ok(())
            });
        }
        assert_eq!(c.status().unwrap().code(), Some(3), "as {}", u.name);
        // The command closes its own.
        let o = run(u, &["-q", "--", "sh", "-c", "exec 0<&- 1>&- 2>&-; exit 4"]);
        assert_eq!(code(&o), 4);
        // Redirected inside.
        let o = run(
            u,
            &[
                "-q",
                "--",
                "sh",
                "-c",
                "echo out >&2; echo err 2>&1 >/dev/null; exit 5",
            ],
        );
        assert_eq!(
            (code(&o), stdout(&o), stderr(&o)),
            (5, String::new(), "out\n".to_string())
        );
    }
}

#[test]
fn a_megabyte_of_arguments_and_odd_bytes_pass_byte_exact() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        // 8 arguments and 8 variables of 64 KiB each (a single string may not exceed
        // 128 KiB, MAX_ARG_STRLEN), plus bytes that are not UTF-8, newlines, dashes.
        let mut args: Vec<OsString> = vec!["-q".into()];
        let chunk = |c: u8| OsString::from_vec(vec![c; 64 * 1024]);
        for i in 0..8 {
            let mut kv = format!("BIG{i}=").into_bytes();
            kv.extend(vec![b'a' + i as u8; 64 * 1024]);
            args.push("--setenv".into());
            args.push(OsString::from_vec(kv));
        }
        args.extend(
            [
                "--",
                "sh",
                "-c",
                "for a in \"$@\"; do printf '%s\\0' \"$a\"; done; env | grep -c '^BIG'",
                "sh",
            ]
            .map(OsString::from),
        );
        let odd = [
            OsString::from_vec(vec![0xff, 0xfe, b'\n', b'x']),
            OsString::from("--hostname"),
            OsString::from("-v\n-q"),
            OsString::from_vec(vec![b'\t', b' ', 0xc3]),
        ];
        let mut want = Vec::new();
        for i in 0..8u8 {
            args.push(chunk(b'A' + i));
            want.push(chunk(b'A' + i));
        }
        for o in &odd {
            args.push(o.clone());
            want.push(o.clone());
        }
        let o = run(u, &args);
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        let (body, count) = o.stdout.split_at(o.stdout.len() - 2);
        let got: Vec<OsString> = body
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| OsString::from_vec(s.to_vec()))
            .collect();
        assert!(got == want, "as {}: arguments changed on the way", u.name);
        assert_eq!(count, b"8\n");
    }
}

#[test]
fn bind_paths_with_spaces_colons_and_odd_bytes() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        let fx = Fixture::new(u, "oddpaths");
        for (dir, escaped) in [("a b", "a b".to_string()), ("c:d", "c\\:d".to_string())] {
            fx.file(&format!("{dir}/f"), dir, u);
            let bind = format!("{}/{escaped}:/in", fx.path.display());
            assert_eq!(
                sh(u, &["--ro-bind", &bind], "cat /in/f"),
                dir,
                "as {}",
                u.name
            );
        }
        let mut raw = fx.path.clone().into_os_string().into_vec();
        raw.extend_from_slice(b"/\xff\xfe");
        let odd = std::path::PathBuf::from(OsString::from_vec(raw.clone()));
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join("f"), "odd").unwrap();
        fx.chown(&odd, u);
        raw.extend_from_slice(b":/in\xff");
        let o = run(
            u,
            &[
                OsString::from("--ro-bind"),
                OsString::from_vec(raw),
                "--".into(),
                "sh".into(),
                "-c".into(),
                "cat /in*/f".into(),
            ],
        );
        assert_eq!(stdout(&o), "odd", "as {}: {}", u.name, stderr(&o));
    }
}

#[test]
fn invalid_values_for_every_option_name_it_and_run_nothing() {
    let _g = HOST_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let u = &users()[0];
    let fx = Fixture::new(u, "invalid");
    let marker = fx.path.join("ran");
    let cases: &[(&str, &str)] = &[
        ("--profile", "no-such-profile"),
        ("--ro-bind", ""),
        ("--bind", "/no/such/source"),
        ("--dev-bind", ":/x"),
        ("--overlay-tmp", "/no/such/source"),
        ("--tmpfs", "relative"),
        ("--dir", "/a/../b"),
        ("--symlink", "no-link"),
        ("--net", "bridge"),
        ("--uid", "root"),
        ("--gid", "-1"),
        ("--hostname", ""),
        ("--cwd", "relative"),
        ("--setenv", "NOVALUE"),
        ("--unsetenv", "A=B"),
        ("--keep-env", ""),
        ("--cap-add", "CAP_NOTHING"),
        ("--timeout", "0"),
    ];
    for (opt, val) in cases {
        let o = run(u, &[*opt, *val, "--", "touch", marker.to_str().unwrap()]);
        assert_eq!(code(&o), 125, "{opt} {val:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(opt),
            "{opt} {val:?}: the message names it: {}",
            stderr(&o)
        );
        assert!(!marker.exists(), "{opt} {val:?} ran the command");
    }
    for (opt, val) in [
        ("--print-profile", "no-such-profile"),
        ("--check-profile", "/no/such/file.toml"),
    ] {
        let o = run(u, &[opt, val]);
        assert_eq!(code(&o), 125, "{opt}: {}", stderr(&o));
    }
}

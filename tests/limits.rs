//! Resource limits: the per-sandbox process ceiling (RLIMIT_NPROC in the sandbox's
//! own user namespace) against fork bombs and real heavy work, and the cgroup v2
//! ceilings (`--memory`, `--cpus`, `--pids`): their errors where no cgroup is
//! delegated (this test machine), end to end where one is.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Forks `n` children that block on a pipe; says how many it got, and why it stopped.
const FORKER: &str = r#"
import os, sys
n = int(sys.argv[1]); r, w = os.pipe(); kids = 0; why = "all"
for i in range(n):
    try:
        pid = os.fork()
    except OSError as e:
        why = "errno %d" % e.errno
        break
    if pid == 0:
        os.close(w); os.read(r, 1); os._exit(0)
    kids += 1
print("started %d %s" % (kids, why), flush=True)
os.close(w)
for _ in range(kids):
    os.wait()
"#;

/// The kernel counts RLIMIT_NPROC per user namespace (Linux 5.14, commit
/// 21d1c5e386bc): with 60 of the user's processes already running on the host, a
/// sandbox limited to 50 still starts 40, and stops short of 50 of its own.
#[test]
fn the_process_limit_counts_the_sandboxs_own_processes() {
    for u in users() {
        // 60 processes of the user, outside any sandbox, blocked on stdin.
        let mut host: Vec<std::process::Child> = (0..60)
            .map(|_| {
                as_user(u, "cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let o = run(
            u,
            &["--limit", "nproc=50", "--", "python3", "-c", FORKER, "40"],
        );
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        assert_eq!(stdout(&o).trim(), "started 40 all", "as {}", u.name);
        // The ceiling holds: PID 1, python and its children are at most 50.
        let o = run(
            u,
            &["--limit", "nproc=50", "--", "python3", "-c", FORKER, "100"],
        );
        let out = stdout(&o);
        let got: u32 = out
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("as {}: {out} {}", u.name, stderr(&o)));
        assert!(
            (40..=48).contains(&got) && out.contains("errno 11"),
            "as {}: EAGAIN near 50 processes: {out}",
            u.name
        );
        for c in host.iter_mut() {
            drop(c.stdin.take());
        }
        for c in host {
            wait_status(c, "host cat");
        }
    }
}

/// Every shipped profile that runs commands has a process ceiling, tight for
/// `untrusted`, generous for the rest; `--limit` overrides it.
/// `u`'s own hard limit on processes (a sandbox's ceiling is never above it).
fn hard_nproc(u: &User) -> u64 {
    let mut c = as_user(u, "cat");
    c.arg("/proc/self/limits");
    let o = output(c);
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap()
        .to_string();
    line.split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap_or(u64::MAX)
}

/// Whether `u` has a delegated cgroup here (then the no-delegation errors cannot
/// be seen).
fn cgroup_delegated(u: &User) -> bool {
    let o = run(u, &["--doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "cgroup limits" && c["ok"] == true)
}

#[test]
fn every_shipped_profile_has_a_process_ceiling() {
    let u = &users()[0];
    let hard = hard_nproc(u);
    for (profile, want) in [
        ("minimal", 4096),
        ("default", 4096),
        ("shell", 4096),
        ("nested", 4096),
        ("dev", 16384),
        ("ci", 16384),
        ("browser", 8192),
        ("untrusted", 256),
        // An abstraction run on its own sets none: the default.
        ("system", 4096),
    ] {
        let o = run(u, &["--profile", profile, "--dry-run", "true"]);
        assert_eq!(code(&o), 0, "{profile}: {}", stderr(&o));
        let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let nproc = plan["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0] == "nproc")
            .map(|r| r[1].as_u64().unwrap());
        assert_eq!(
            nproc,
            Some(want.min(hard)),
            "{profile} (your hard limit: {hard})"
        );
    }
    // In force inside, and overridable.
    let limits = sh(u, &["--limit", "nproc=300"], "cat /proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[2..4],
        ["300", "300"]
    );
}

/// Held by the tests that load the machine (the fork bombs, the parallel build),
/// so that the host's responsiveness is measured against the bomb alone, not
/// against another test of this file running beside it.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Tasks of `pids` and all their descendants (threads counted), from the host.
fn tasks_under(root: i32) -> usize {
    let mut children: std::collections::HashMap<i32, Vec<(i32, usize)>> = Default::default();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        let (ppid, threads) = (f[1].parse().unwrap_or(0), f[17].parse().unwrap_or(1));
        children.entry(ppid).or_default().push((pid, threads));
    }
    let (mut n, mut stack) = (0, vec![root]);
    while let Some(p) = stack.pop() {
        for (c, t) in children.get(&p).into_iter().flatten() {
            n += t;
            stack.push(*c);
        }
    }
    n
}

/// Time for the host to start and finish `/bin/true` as `u`: the median of 5.
fn host_start_ms(u: &User) -> f64 {
    let mut v: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let st = as_user(u, "/bin/true").status().unwrap();
            assert!(st.success());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[2]
}

/// A fork bomb in `default` and `untrusted`, two kinds: the shell's (`f | f &`,
/// which churns: its processes die when refused and others take their place) and
/// one that settles (every process forks until refused, then waits). The shell's
/// hits the ceiling ("Cannot fork") while the host starts a process in under
/// 100 ms; the settled one holds the sandbox's ceiling (never more, at most a few
/// less), however many processes the user has elsewhere. When the sandbox ends nothing of either is left.
#[test]
fn a_fork_bomb_stops_at_the_sandboxs_ceiling() {
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let probe = probe_bin();
    let p = probe.to_str().unwrap();
    for u in users() {
        for (profile, ceiling) in [("default", 4096), ("untrusted", 256)] {
            let marker = format!("bomb{}", unique());
            // `read` keeps the command (and so the sandbox) until stdin closes.
            let script = format!("f() {{ f | f & }}; f; read x; : {marker}");
            let mut c = sbx_cmd(u, ["--profile", profile, "-q", "--", "dash", "-c", &script]);
            // In a session of its own, as from a terminal of its own: the host's
            // other sessions share the CPU with it as a whole (autogroup).
            // SAFETY: setsid is async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            let mut child = c
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(child.stderr.as_ref().unwrap());
            let said = read_until(fd, "Cannot fork", Duration::from_secs(60));
            assert!(
                said.contains("Cannot fork"),
                "as {} under {profile}: the bomb never hit a limit: {said}",
                u.name
            );
            let ms = host_start_ms(u);
            eprintln!(
                "as {} under {profile}: shell fork bomb at its ceiling; the host started \
                 /bin/true in {ms:.1} ms (median of 5)",
                u.name
            );
            assert!(
                ms < 100.0,
                "as {} under {profile}: the host took {ms:.1} ms to start /bin/true",
                u.name
            );
            drop(child.stdin.take());
            let st = wait_status(child, "shell fork bomb sandbox");
            assert!(st.code().is_some(), "sbx itself exited normally: {st:?}");
            // PID 1's exit took the whole pid namespace with it before sbx's wait
            // returned: nothing of the bomb is left.
            assert_eq!(processes_with(&marker), Vec::<i32>::new(), "as {}", u.name);

            // The settling bomb: the tasks of the sandbox (PID 1 and all below it,
            // every one charged to the sandbox's user namespace) stop at the ceiling.
            let mut child = sbx_cmd(
                u,
                [
                    "--profile",
                    profile,
                    "-q",
                    "--ro-bind",
                    p,
                    "--",
                    p,
                    "forkbomb",
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
            let sbx = child.id() as i32;
            let fd = std::os::fd::AsRawFd::as_raw_fd(child.stdout.as_ref().unwrap());
            let said = read_until(fd, "\n", Duration::from_secs(60));
            assert_eq!(said, "refused EAGAIN\n", "as {} under {profile}", u.name);
            // Refused processes stay; the last forks in flight finish: wait until
            // two counts agree.
            let start = Instant::now();
            let mut held = tasks_under(sbx);
            loop {
                let again = tasks_under(sbx);
                if again == held || start.elapsed() > Duration::from_secs(30) {
                    break;
                }
                held = again;
            }
            eprintln!(
                "as {} under {profile}: the settled bomb holds {held} tasks",
                u.name
            );
            // Never above the ceiling, and at it but for a few: each process stops at
            // its first refusal, so a task counted for a moment when the bomb filled
            // up (one being reaped: the kernel uncharges it after it is gone from
            // /proc) leaves the settled bomb a slot or two short.
            assert!(
                held <= ceiling && held + 4 >= ceiling,
                "as {} under {profile}: the bomb settled at {held} tasks, the ceiling is {ceiling}",
                u.name
            );
            drop(child.stdin.take());
            let st = wait_status(child, "settling fork bomb sandbox");
            assert_eq!(st.code(), Some(0));
            assert_eq!(
                wait_gone("forkbomb", Duration::from_secs(10)),
                Vec::<i32>::new(),
                "as {} under {profile}: nothing of the bomb is left",
                u.name
            );
        }
    }
}

/// Heavy but legitimate work is unaffected by the default ceilings: a parallel C
/// build (make -j8), and a program with 500 threads.
#[test]
fn heavy_work_fits_under_the_ceilings() {
    let build = r#"set -e
mkdir -p /tmp/b && cd /tmp/b
objs=""
for i in $(seq 1 32); do
  printf 'int f%d(int x) { return x * %d; }\n' $i $i > f$i.c
  objs="$objs f$i.o"
done
printf 'int main(void) { return 0; }\n' > main.c
printf 'app: main.o %s\n\tgcc -o app main.o %s\n%%.o: %%.c\n\tgcc -O2 -pthread -c $< -o $@\n' "$objs" "$objs" > Makefile
make -s -j8
./app && echo built"#;
    let threads = r#"
import threading
n = 500
b = threading.Barrier(n + 1)
ts = [threading.Thread(target=b.wait) for _ in range(n)]
for t in ts: t.start()
b.wait()
for t in ts: t.join()
print("threads", n)
"#;
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    for u in users() {
        for profile in ["default", "dev"] {
            let out = sh(u, &["--profile", profile], build);
            assert!(
                out.contains("built"),
                "as {} under {profile}: {out}",
                u.name
            );
        }
        for profile in ["default", "ci"] {
            let o = run(u, &["--profile", profile, "--", "python3", "-c", threads]);
            assert_eq!(code(&o), 0, "as {} under {profile}: {}", u.name, stderr(&o));
            assert_eq!(stdout(&o).trim(), "threads 500");
        }
    }
}

/// Where no cgroup v2 subtree is delegated (sbx is started here by root into its
/// own cgroup: never delegated to the test users), the cgroup ceilings are refused
/// with the reason and the fix, by --dry-run as by a launch; the command never runs.
#[test]
fn cgroup_limits_without_delegation_are_refused() {
    for u in users() {
        if cgroup_delegated(u) {
            skip(
                Lacking::Kernel,
                &format!("{} has a delegated cgroup here: no error to see", u.name),
            );
            continue;
        }
        for (args, what) in [
            (
                &["--memory", "512M"][..],
                "--memory 512M: cannot set memory 512 MiB: ",
            ),
            (&["--cpus", "0.5"][..], "--cpus 0.5: cannot set cpus 0.5: "),
            (&["--pids", "64"][..], "--pids 64: cannot set pids 64: "),
            (
                &["--limit", "memory=1G"][..],
                "--limit memory=1G: cannot set memory 1 GiB: ",
            ),
        ] {
            for dry in [true, false] {
                let mut a = args.to_vec();
                if dry {
                    a.push("--dry-run");
                }
                a.extend(["--", "sh", "-c", "echo ran"]);
                let o = run(u, &a);
                let e = stderr(&o);
                assert_eq!(code(&o), 125, "as {} {a:?}: {e}", u.name);
                assert!(e.contains(what), "as {} {a:?}: {e}", u.name);
                assert!(e.contains("sbx --doctor"), "{e}");
                assert!(!stdout(&o).contains("ran"));
            }
        }
        // `untrusted` asks for its ceilings best-effort: it runs, and says without what.
        let o = run(u, &["--profile", "untrusted", "--", "sh", "-c", "echo ran"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), "ran\n");
        assert!(
            stderr(&o).contains("running without memory 1 GiB, pids 256"),
            "{}",
            stderr(&o)
        );
        // --require cgroup makes that an error.
        let o = run(
            u,
            &[
                "--profile",
                "untrusted",
                "--require",
                "cgroup",
                "--",
                "sh",
                "-c",
                "echo ran",
            ],
        );
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("limits: cannot set memory 1 GiB, pids 256"),
            "{}",
            stderr(&o)
        );
    }
}

/// A cgroup v2 hierarchy whose root offers memory, cpu and pids to its children
/// (a unified host), or why there is none.
fn delegatable_v2() -> Result<PathBuf, String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mi
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            (right.starts_with("cgroup2 ") && f[3] == "/" && f[5].starts_with("rw"))
                .then(|| PathBuf::from(f[4]))
        })
        .next()
        .ok_or("no read-write cgroup v2 mount of the whole hierarchy")?;
    let on = std::fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = ["memory", "cpu", "pids"]
        .into_iter()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    if missing.is_empty() {
        Ok(mount)
    } else {
        Err(format!(
            "the cgroup v2 hierarchy at {} does not pass {} to its children (a hybrid host \
             binds them to cgroup v1; the host's hierarchies are not reconfigured for a test)",
            mount.display(),
            missing.join(", ")
        ))
    }
}

/// An administrator's delegation, as cgroup-v2.rst describes it: a directory of the
/// user's (with its cgroup.procs and cgroup.subtree_control), and the user's
/// session started in a child of it. Removed on drop.
struct Delegation {
    parent: PathBuf,
    session: PathBuf,
}

impl Delegation {
    fn new(mount: &Path, u: &User) -> Delegation {
        let parent = mount.join(format!("sbx-test-{}", unique()));
        let session = parent.join("session");
        std::fs::create_dir(&parent).unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu +pids").unwrap();
        std::fs::create_dir(&session).unwrap();
        for p in [
            parent.clone(),
            parent.join("cgroup.procs"),
            parent.join("cgroup.subtree_control"),
            session.clone(),
            session.join("cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
        Delegation { parent, session }
    }

    /// Run sbx as `u` from inside the session: a shell of the user's waits on stdin,
    /// root moves it into the session, then it execs sbx.
    fn sbx(&self, u: &User, args: &[&str]) -> std::process::Output {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("read go; exec {} {}", sbx_bin().display(), quoted.join(" "));
        let mut c = as_user(u, "sh");
        c.args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::fs::write(self.session.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        drop(child.stdin.take());
        wait_output(child, "sbx in a delegated cgroup")
    }

    /// As `sbx`, but returns once the command has printed `up`.
    fn spawn(&self, u: &User, args: &[&str]) -> std::process::Child {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("read go; exec {} {}", sbx_bin().display(), quoted.join(" "));
        let mut c = as_user(u, "sh");
        c.args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::fs::write(self.session.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(child.stdout.as_ref().unwrap());
        assert!(read_until(fd, "up", Duration::from_secs(30)).contains("up"));
        child
    }

    fn leaves(&self) -> Vec<String> {
        std::fs::read_dir(&self.parent)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sbx-"))
            .collect()
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        for l in self.leaves() {
            let _ = std::fs::remove_dir(self.parent.join(l));
        }
        let _ = std::fs::remove_dir(&self.session);
        let _ = std::fs::remove_dir(&self.parent);
    }
}

/// Wait until `cgroup.events` of `dir` says `populated 0`, woken by the kernel's
/// notification on that file (POLLPRI), up to `limit`.
fn wait_empty(dir: &Path, limit: Duration) -> bool {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(dir.join("cgroup.events")).unwrap();
    let start = Instant::now();
    loop {
        let mut text = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut text).unwrap();
        if text.lines().any(|l| l == "populated 0") {
            return true;
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&f),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
    }
}

/// End to end where a cgroup v2 hierarchy with the controllers exists: a memory hog
/// is OOM-killed inside and only inside, `--cpus 0.5` halves a busy loop's share,
/// `--pids` caps the tasks, the sandbox sees its leaf as its cgroup root, and the
/// leaf is gone afterwards, also after sbx is SIGKILLed (the next launch removes it).
#[test]
fn cgroup_limits_where_delegated() {
    if !is_root() {
        return skip(Lacking::Setup, "making a delegated cgroup needs root");
    }
    let mount = match delegatable_v2() {
        Ok(m) => m,
        Err(why) => return skip(Lacking::Kernel, &why),
    };
    for u in users() {
        let d = Delegation::new(&mount, u);
        // The hog: 256 MiB touched under a 64 MiB ceiling.
        let o = d.sbx(
            u,
            &[
                "--memory",
                "64M",
                "--",
                "python3",
                "-c",
                "b = bytearray(256 << 20); print('survived')",
            ],
        );
        assert_eq!(
            code(&o),
            137,
            "as {}: killed by the OOM killer: {}",
            u.name,
            stderr(&o)
        );
        assert!(!stdout(&o).contains("survived"));
        // Inside, the leaf is the cgroup root, and its limit is in force.
        let o = d.sbx(u, &["--memory", "64M", "--", "cat", "/proc/self/cgroup"]);
        assert_eq!(stdout(&o), "0::/\n", "{}", stderr(&o));
        // Half a CPU: a busy loop gets about half the work done in two seconds that
        // it gets without the ceiling (work, not CPU time, is what is compared: it
        // needs no clock of the sandbox's to be right).
        let busy = "import time\nn = 0\nt = time.monotonic()\nwhile time.monotonic() - t < 2: n += 1\nprint(n)";
        let work = |args: &[&str]| -> f64 {
            let mut a = args.to_vec();
            a.extend(["--", "python3", "-c", busy]);
            let o = d.sbx(u, &a);
            stdout(&o)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{}", stderr(&o)))
        };
        let (half, free) = (work(&["--cpus", "0.5"]), work(&["--memory", "1G"]));
        eprintln!(
            "as {}: {half} loops at --cpus 0.5, {free} without ({:.2})",
            u.name,
            half / free
        );
        assert!(
            half < free * 0.7,
            "as {}: {half} loops at --cpus 0.5 against {free}",
            u.name
        );
        // --pids: the sandbox's tasks stop there.
        let o = d.sbx(u, &["--pids", "20", "--", "python3", "-c", FORKER, "50"]);
        assert!(stdout(&o).contains("errno 11"), "{}", stdout(&o));
        assert_eq!(d.leaves(), Vec::<String>::new(), "every leaf removed");
        // --enter from the same delegated subtree joins the leaf (the cgroup root
        // inside); sbx SIGKILLed: its leaf stays until the next launch with limits.
        let name = format!("cg{}", unique());
        let mut child = d.spawn(
            u,
            &[
                "--name",
                &name,
                "--pids",
                "50",
                "--",
                "sh",
                "-c",
                "echo up; read x",
            ],
        );
        let o = d.sbx(u, &["--enter", &name, "--", "cat", "/proc/self/cgroup"]);
        assert_eq!(stdout(&o), "0::/\n", "as {}: {}", u.name, stderr(&o));
        // SAFETY: killing our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let left = d.leaves();
        assert_eq!(left.len(), 1, "the killed sbx's leaf is left");
        // Its processes die of PDEATHSIG in their own time: a leaf still holding one
        // is not stale yet (the kernel refuses to remove it). Wait until it is empty.
        assert!(
            wait_empty(&d.parent.join(&left[0]), Duration::from_secs(30)),
            "the killed sandbox lingers"
        );
        let o = d.sbx(u, &["--pids", "50", "--", "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(d.leaves(), Vec::<String>::new(), "the stale leaf removed");
    }
}

/// `--inspect` and `--list --json` show the limits in force (read from the
/// command's /proc/PID/limits) and the sandbox's current number of tasks.
#[test]
fn inspect_and_list_show_limits_and_usage() {
    for u in users() {
        let name = format!("lim{}", unique());
        let mut child = sbx_cmd(
            u,
            [
                "--name",
                &name,
                "--limit",
                "nproc=300",
                "--limit",
                "nofile=64",
                "--",
                "sh",
                "-c",
                "echo up; read x; exit 0",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(child.stdout.as_ref().unwrap());
        assert!(read_until(fd, "up", Duration::from_secs(30)).contains("up"));
        // The record is written once PID 1 has started the command, maybe after
        // the command printed: wait for the name to be listed.
        let start = Instant::now();
        while !stdout(&run(u, &["--list"])).contains(&name) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} never listed"
            );
        }
        let o = run(u, &["--inspect", &name]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = stdout(&o);
        let rl = text
            .lines()
            .find(|l| l.trim_start().starts_with("rlimits"))
            .unwrap();
        assert!(
            rl.contains("nproc=300") && rl.contains("nofile=64"),
            "{text}"
        );
        // PID 1 and the shell.
        assert!(text.contains("tasks     2 "), "{text}");
        let o = run(u, &["--list", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let me = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not listed: {v}"));
        assert_eq!(me["limits"]["rlimits"]["nproc"], 300);
        assert_eq!(me["limits"]["rlimits"]["nofile"], 64);
        assert_eq!(me["limits"]["tasks"], 2);
        assert!(me["limits"]["cgroup"].is_null());
        let o = run(u, &["--inspect", &name, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["limits"]["rlimits"]["nproc"], 300);
        drop(child.stdin.take());
        assert!(wait_status(child, "named sandbox").success());
    }
}

/// `--doctor` reports what this host gives, with the fix for what it lacks; the
/// test users differ in subordinate ids, and no cgroup is delegated to them here.
#[test]
fn doctor_reports_the_host() {
    for u in users() {
        let o = run(u, &["--doctor"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = stdout(&o);
        let line = |name: &str| {
            text.lines()
                .find(|l| l[4..].starts_with(name))
                .unwrap_or_else(|| panic!("no {name} line: {text}"))
                .to_string()
        };
        assert!(line("user namespaces").starts_with("ok "), "{text}");
        assert_eq!(
            line("subordinate ids").starts_with("ok "),
            u.subids.is_some(),
            "as {}: {text}",
            u.name
        );
        assert!(line("process ceiling").starts_with("ok "), "{text}");
        let cg = line("cgroup limits");
        assert!(
            cg.starts_with("ok ") == cgroup_delegated(u)
                && (cg.starts_with("ok ") || cg.contains("unavailable: ")),
            "{cg}"
        );
        let o = run(u, &["--doctor", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "user namespaces",
                "subordinate ids",
                "landlock",
                "process ceiling",
                "cgroup limits",
                "network",
                "seccomp",
                "session bus",
                "desktop",
                "records"
            ]
        );
        // An action: a command with it is refused.
        let o = run(u, &["--doctor", "true"]);
        assert_eq!(code(&o), 125);
    }
}

//! Running sandboxes: `--list`, `--enter`, `--inspect`, `--kill`. Every action on a
//! sandbox goes through [`record::find`], which verifies the process before trusting
//! its record, and then acts through the pidfd it verified.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::exec::Prepared;
use crate::host::Host;
use crate::record::{self, Record};
use crate::{exec, launch, sys};

/// Run the management action `cli` asks for, if any; returns the exit status.
pub fn run(cli: &Cli, host: &Host) -> Option<i32> {
    let r = if cli.list {
        list(cli, host)
    } else if let Some(name) = &cli.enter {
        enter(cli, host, name)
    } else if let Some(what) = &cli.inspect {
        inspect(cli, host, what)
    } else if let Some(name) = &cli.kill {
        kill(cli, host, name)
    } else {
        return None;
    };
    Some(r.unwrap_or_else(|e| {
        eprintln!("sbx: {e}");
        e.code
    }))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn uptime(started: u64) -> String {
    let s = now_secs().saturating_sub(started);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The records directory for --enter, --inspect NAME and --kill; every place passed
/// over is said (it may hold records sbx will not read).
fn records(host: &Host) -> Result<std::path::PathBuf> {
    let located = record::dir_for(host);
    if let Some(n) = record::problems_notice(&located) {
        eprintln!("sbx: {}", crate::text::escape(&n));
    }
    located.dir.ok_or_else(|| {
        Error::new(
            "sandbox records",
            "no directory of yours to read them from: no sandbox is recorded",
        )
    })
}

fn list(cli: &Cli, host: &Host) -> Result<i32> {
    // What could not be read is said; what could, is listed.
    let live = match records(host) {
        Ok(d) => record::list(&d, host.uid)?,
        Err(_) => Vec::new(),
    };
    if cli.json {
        let v: Vec<serde_json::Value> = live
            .iter()
            .map(|(r, _)| {
                serde_json::json!({
                    "name": r.name, "pid": r.pid1, "launcher": r.launcher, "profile": r.profile,
                    "net": r.net, "started": r.started, "uptime_s": now_secs().saturating_sub(r.started),
                    "command": r.command, "namespaces": r.namespaces,
                    "limits": limits_json(r.anchor, Some(r.pid1), Some(r)),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    println!(
        "{:<24} {:>8} {:<12} {:<20} {:>8}  COMMAND",
        "NAME", "PID", "PROFILE", "NET", "UPTIME"
    );
    // A record's fields came from the command line of a sandbox (a file name with an
    // escape sequence, say): escaped before they reach the terminal.
    let esc = crate::text::escape;
    for (r, _) in &live {
        println!(
            "{:<24} {:>8} {:<12} {:<20} {:>8}  {}",
            esc(&r.name),
            r.pid1,
            esc(&r.profile),
            esc(&r.net),
            uptime(r.started),
            esc(&r.command.join(" "))
        );
    }
    Ok(0)
}

/// The signal names --kill takes.
pub fn parse_signal(s: &str) -> Option<libc::c_int> {
    if let Ok(n) = s.parse::<libc::c_int>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let n = s.trim_start_matches("SIG").to_ascii_uppercase();
    Some(match n.as_str() {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}

fn wait_gone(fd: std::os::fd::BorrowedFd, limit: Duration) -> bool {
    // A pidfd polls readable once the process has exited.
    sys::poll_readable(&[fd], Some(Instant::now() + limit)).is_ok_and(|r| r[0])
}

fn kill(cli: &Cli, host: &Host, name: &str) -> Result<i32> {
    let dir = records(host)?;
    let (rec, h) = record::find(&dir, host.uid, name)?;
    let pidfd = h.pid1;
    let sig = match &cli.signal {
        None => libc::SIGTERM,
        Some(s) => parse_signal(s)
            .ok_or_else(|| Error::new("--signal", format!("{s:?} is not a signal")))?,
    };
    let grace = Duration::from_secs_f64(cli.grace.unwrap_or(5.0));
    let launcher = sys::pidfd_open(rec.launcher).ok();
    sys::pidfd_send_signal(pidfd.as_fd(), sig).map_err(|e| e.at(format!("--kill {name}")))?;
    if !wait_gone(pidfd.as_fd(), grace) {
        eprintln!(
            "sbx: {name} still running after {:.1} s: SIGKILL",
            grace.as_secs_f64()
        );
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        if !wait_gone(pidfd.as_fd(), Duration::from_secs(10)) {
            return Err(Error::new(
                format!("--kill {name}"),
                "PID 1 survived SIGKILL",
            ));
        }
    }
    // The sbx that started it removes the record as it ends: wait for it, briefly.
    if let Some(l) = &launcher {
        wait_gone(l.as_fd(), Duration::from_secs(5));
    }
    let path = dir.join(format!("{name}.json"));
    if path.exists() {
        record::remove(&path);
    }
    Ok(0)
}

fn enter(cli: &Cli, host: &Host, name: &str) -> Result<i32> {
    let (rec, h) = record::find(&records(host)?, host.uid, name)?;
    let pidfd = h.anchor;
    let step = format!("--enter {name}");
    // Join only the namespaces that differ from ours (with --net host the network is
    // the host's, which the sandbox's user namespace has no rights over), the user
    // namespace first: setns(2) with a pidfd joins them all at once, atomically.
    let ours = record::ns_inodes("self");
    let mut flags = 0;
    for r in crate::namespace::made() {
        if rec.namespaces.get(r.proc_name) != ours.get(r.proc_name) {
            flags |= r.flag;
        }
    }
    // Without a command: the user's shell, told to read no startup file. The
    // sandbox's home is the sandbox's to write: its ~/.bashrc or ~/.zshrc would
    // otherwise run on the caller's terminal, which the sandbox never had.
    let (command, quiet_env) = if cli.command.is_empty() {
        (shell_without_startup_files(&login_shell(host)), true)
    } else {
        (cli.command.clone(), false)
    };
    let mut rec = rec;
    if quiet_env {
        // Variables that name a startup file for sh, ksh and bash, or readline's.
        rec.env
            .retain(|(k, _)| !matches!(k.as_str(), "ENV" | "BASH_ENV" | "ZDOTDIR" | "INPUTRC"));
        rec.env.push(("INPUTRC".into(), "/etc/inputrc".into()));
    }
    let prep = prepared(&rec, command);
    // Into the sandbox's cgroup first, while paths are the host's (and before the
    // cgroup namespace, whose root the kernel would not let us enter from outside).
    if let Some(cg) = &rec.cgroup {
        crate::cgroup::join(cg, rec.launcher, rec.pid1).map_err(|e| e.within(&step))?;
    }
    let terminal = crate::tty::save();
    let set = launch::handled();
    sys::sigmask(libc::SIG_BLOCK, &set);
    sys::setns(pidfd.as_fd(), flags).map_err(|e| e.at(step.clone()))?;
    // The pid namespace applies to children: the command is forked into it.
    let pid = sys::clone_fork(0).map_err(|e| e.at(step.clone()))?;
    if pid == 0 {
        if sys::die_with_parent().is_err() {
            sys::exit_now(crate::error::EXIT_SETUP);
        }
        let dirs: Vec<std::path::PathBuf> = rec
            .env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| v.into())
            .into_iter()
            .collect();
        // The umask, read by setting it and back.
        let umask = sys::umask(sys::umask(0o022));
        exec::exec_command(
            &prep,
            exec::Start {
                dirs: &dirs,
                required: false,
                umask,
                gate: None,
            },
        );
    }
    loop {
        let (sig, code) = sys::sigwait(&set).map_err(|e| e.at(step.clone()))?;
        if sig == libc::SIGCHLD {
            if let Some((_, status)) =
                sys::waitpid(pid, libc::WNOHANG).map_err(|e| e.at(step.clone()))?
            {
                terminal.restore();
                return Ok(sys::exit_code(status));
            }
        } else if launch::sent_by_process(code) {
            sys::kill(pid, sig);
        }
    }
}

/// `shell` with the option that keeps it from reading any startup file in the
/// home; a shell sbx does not know is replaced by /bin/sh, which reads none
/// (with ENV unset).
pub fn shell_without_startup_files(shell: &str) -> Vec<OsString> {
    let name = std::path::Path::new(shell)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let flags: &[&str] = match name.as_str() {
        "bash" => &["--noprofile", "--norc"],
        "zsh" => &["-f"],
        "fish" => &["--no-config"],
        "sh" | "dash" | "ksh" | "mksh" | "ash" => &[],
        _ => return vec!["/bin/sh".into()],
    };
    std::iter::once(shell)
        .chain(flags.iter().copied())
        .map(OsString::from)
        .collect()
}

/// The user's login shell from /etc/passwd, else /bin/sh.
fn login_shell(host: &Host) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 7 && f[2] == host.uid.to_string())
                .map(|f| f[6].to_string())
        })
        .filter(|s| s.starts_with('/'))
        .unwrap_or_else(|| "/bin/sh".into())
}

fn prepared(rec: &Record, command: Vec<OsString>) -> Prepared {
    let env: Vec<(OsString, OsString)> =
        rec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    Prepared::build(
        &command,
        &env,
        &rec.caps,
        &rec.rlimits,
        &rec.seccomp,
        &rec.landlock,
    )
}

/// The rlimits in force for process `pid`, by `[limits]` name, from
/// /proc/PID/limits (the truth, whatever the record says): soft values, `unlimited`
/// as null.
fn rlimits_of(pid: i32) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        let row = crate::plan::limits::RLIMITS
            .iter()
            .find(|(_, _, label)| line.starts_with(label));
        if let Some((key, _, _)) = row {
            let soft = line
                .split_at(26.min(line.len()))
                .1
                .split_whitespace()
                .next();
            let v = match soft.and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => serde_json::Value::from(n),
                None => serde_json::Value::Null,
            };
            out.insert(key.to_string(), v);
        }
    }
    out
}

/// Tasks (threads) of the sandbox whose PID 1 is `pid1`: PID 1 and every process
/// below it, as the process ceiling (nproc, pids) counts them.
pub fn sandbox_tasks(pid1: i32) -> usize {
    let mut children: std::collections::HashMap<i32, Vec<(i32, usize)>> = Default::default();
    let mut own = 1;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(threads)) = (
            f.get(1).and_then(|v| v.parse::<i32>().ok()),
            f.get(17).and_then(|v| v.parse::<usize>().ok()),
        ) else {
            continue;
        };
        if pid == pid1 {
            own = threads;
        }
        children.entry(ppid).or_default().push((pid, threads));
    }
    let (mut n, mut stack) = (own, vec![pid1]);
    while let Some(p) = stack.pop() {
        for (c, t) in children.get(&p).into_iter().flatten() {
            n += t;
            stack.push(*c);
        }
    }
    n
}

/// Limits in force and current usage, for `--inspect` and `--list --json`.
fn limits_json(anchor: i32, pid1: Option<i32>, rec: Option<&Record>) -> serde_json::Value {
    let cgroup = rec.and_then(|r| r.cgroup.as_ref()).map(|c| {
        let usage: serde_json::Map<String, serde_json::Value> = crate::cgroup::usage(&c.dir())
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::from(v.parse::<u64>().ok())))
            .collect();
        serde_json::json!({
            "path": c.dir(),
            "memory": c.request.memory, "cpus": c.request.cpus, "pids": c.request.pids,
            "usage": usage,
        })
    });
    serde_json::json!({
        "rlimits": rlimits_of(anchor),
        "tasks": pid1.map(sandbox_tasks),
        "cgroup": cgroup,
    })
}

fn inspect(cli: &Cli, host: &Host, what: &str) -> Result<i32> {
    let v = inspection(host, what)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print_inspection(&v);
    }
    Ok(0)
}

/// What `--inspect` shows of process PID (or sandbox NAME), as its JSON form.
fn inspection(host: &Host, what: &str) -> Result<serde_json::Value> {
    let (pid, rec) = match what.parse::<i32>() {
        Ok(p) if p > 0 => (p, None),
        _ => {
            let (r, _) = record::find(&records(host)?, host.uid, what)?;
            (r.anchor, Some(r))
        }
    };
    let step = format!("--inspect {what}");
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{f}"))
            .map_err(|e| Error::new(step.clone(), format!("/proc/{pid}/{f}: {e}")))
    };
    let status = read("status")?;
    let field = |k: &str| -> String {
        status
            .lines()
            .find(|l| l.starts_with(&format!("{k}:")))
            .map(|l| l[k.len() + 1..].trim().to_string())
            .unwrap_or_default()
    };
    let theirs = record::ns_inodes(&pid.to_string());
    if theirs.is_empty() {
        return Err(Error::new(
            step,
            format!("cannot read /proc/{pid}/ns (not your process?)"),
        ));
    }
    let ours = record::ns_inodes("self");
    let mounts = read("mountinfo").map(|m| m.lines().count()).unwrap_or(0);
    let seccomp = match field("Seccomp").as_str() {
        "0" => "none",
        "1" => "strict",
        "2" => "filter",
        _ => "unknown",
    };
    let landlock = match &rec {
        Some(r) if r.landlock.is_applied() => format!(
            "applied to the sandbox's command: {}",
            r.landlock.summary().trim_start_matches("landlock: ")
        ),
        Some(_) => "off for the sandbox's command".into(),
        None => "not visible in /proc (the kernel offers no per-process query)".into(),
    };
    let ns: Vec<(String, u64, bool)> = crate::namespace::made()
        .filter_map(|r| {
            let n = r.proc_name;
            theirs
                .get(n)
                .map(|i| (n.to_string(), *i, ours.get(n) == Some(i)))
        })
        .collect();
    let maps = |f: &str| -> Vec<String> {
        read(f)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let limits = limits_json(pid, rec.as_ref().map(|r| r.pid1), rec.as_ref());
    let caps: serde_json::Map<String, serde_json::Value> = CAP_FIELDS
        .iter()
        .map(|k| (k.to_string(), serde_json::Value::from(field(k))))
        .collect();
    let namespaces: serde_json::Map<String, serde_json::Value> = ns
        .iter()
        .map(|(n, i, shared)| {
            (
                n.clone(),
                serde_json::json!({"inode": i, "shared_with_host": shared}),
            )
        })
        .collect();
    Ok(serde_json::json!({
        "pid": pid,
        "name": rec.as_ref().map(|r| r.name.clone()),
        "namespaces": namespaces,
        "uid_map": maps("uid_map"), "gid_map": maps("gid_map"),
        "capabilities": caps,
        "no_new_privs": field("NoNewPrivs") == "1",
        "seccomp": seccomp,
        "landlock": landlock,
        "mounts": mounts,
        "limits": limits,
    }))
}

const CAP_FIELDS: [&str; 5] = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

/// `--inspect` for people, from its JSON form.
fn print_inspection(v: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let name = v["name"]
        .as_str()
        .map(|n| format!(" (sandbox {})", crate::text::escape(n)))
        .unwrap_or_default();
    println!("pid {}{name}", v["pid"]);
    for r in crate::namespace::made() {
        let n = r.proc_name;
        let Some(ns) = v["namespaces"].get(n) else {
            continue;
        };
        let own = match ns["shared_with_host"].as_bool() {
            Some(true) => "shared with the host",
            _ => "own",
        };
        println!("  ns {n:<7} {:<12} {own}", ns["inode"]);
    }
    for m in ["uid_map", "gid_map"] {
        let lines: Vec<String> = v[m].as_array().into_iter().flatten().map(text).collect();
        println!("  {m}   {}", lines.join("; "));
    }
    for k in CAP_FIELDS {
        println!("  {k}    {}", text(&v["capabilities"][k]));
    }
    println!(
        "  NoNewPrivs {}",
        if v["no_new_privs"].as_bool() == Some(true) {
            1
        } else {
            0
        }
    );
    println!("  seccomp   {}", text(&v["seccomp"]));
    println!("  landlock  {}", text(&v["landlock"]));
    println!("  mounts    {}", v["mounts"]);
    print_limits(&v["limits"]);
}

fn print_limits(limits: &serde_json::Value) {
    let shown: Vec<String> = limits["rlimits"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_u64().map(|n| format!("{k}={n}")))
        .collect();
    println!("  rlimits   {}", shown.join(" "));
    if let Some(t) = limits["tasks"].as_u64() {
        println!("  tasks     {t} (processes and threads of the sandbox)");
    }
    if let Some(c) = limits["cgroup"].as_object() {
        let show = |k: &str| {
            c.get(k)
                .filter(|v| !v.is_null())
                .map(|v| format!("{k}={v}"))
        };
        let set: Vec<String> = ["memory", "cpus", "pids"]
            .iter()
            .filter_map(|k| show(k))
            .collect();
        println!(
            "  cgroup    {} {}",
            crate::text::escape(c["path"].as_str().unwrap_or_default()),
            set.join(" ")
        );
        if let Some(u) = c["usage"].as_object() {
            let used: Vec<String> = u.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("  usage     {}", used.join(" "));
        }
    }
}

//! sbx: a rootless sandbox for Linux. `main` parses the command line, builds the
//! [`plan::Plan`] (all decisions, no side effects) and hands it to [`launch`].
//!
//! docs/ARCHITECTURE.md maps the modules to the launch: `cli` and `host` feed
//! `plan`; `launch` drives `userns` (id maps), `net` (loopback), `mount` (the new
//! root), then PID 1 and `exec` (`caps`, `landlock`, `seccomp`, execve), talking
//! through `msg`. `sys` is the syscall layer.

pub mod cli;
pub mod commands;
pub mod error;
pub mod helpers;
pub mod host;
pub mod kernel;
pub mod launch;
pub mod plan;
pub mod profile;
pub mod sys;
pub mod text;
pub mod trace;

// The modules by their short names, as the code names them.
pub use commands::{doctor, manage, record, tools};
pub use helpers::{dbus_proxy, gitindex, pasta, vcs_stage};
pub use kernel::{caps, cgroup, landlock, namespace, seccomp, syscall_table};
pub use launch::{exec, mount, msg, net, status, tty, userns};

use error::EXIT_SETUP;

/// The host the fuzz entries plan against: no filesystem is consulted.
fn fuzz_host() -> host::Host {
    host::Host {
        uid: 1000,
        gid: 1000,
        user: "fuzz".into(),
        home: "/home/fuzz".into(),
        home_real: "/home/fuzz".into(),
        cwd: Some("/work".into()),
        ..Default::default()
    }
}

/// Fuzzing entry: resolve and compile arbitrary profile text against an imaginary
/// host. Must never panic, whatever the input.
pub fn fuzz_profile(text: &str) {
    let host = fuzz_host();
    if let Ok(r) = profile::resolve_text(text) {
        let vars = profile::vars::Vars::from_host(&host);
        let _ = plan::compile_profile(&r, &host, &host::ImaginaryFs, &vars);
        let _ = plan::profile_rlimits(&r);
    }
}

/// Fuzzing entry: parse an arbitrary command line and build its plan against an
/// imaginary host. Must never panic, whatever the input.
pub fn fuzz_cli(args: &[std::ffi::OsString]) {
    let mut argv = vec![std::ffi::OsString::from("sbx")];
    argv.extend(args.iter().cloned());
    if let Ok(cli) = cli::parse(argv) {
        let host = fuzz_host();
        let vars = profile::vars::Vars::from_host(&host);
        let _ = plan::Plan::build_with(
            &cli,
            &host,
            &host::ImaginaryFs,
            &profile::Locations::none(),
            &vars,
        );
    }
}

/// The whole program; returns the exit status.
pub fn main() -> i32 {
    // Rust starts with SIGPIPE ignored, and an ignored disposition survives execve:
    // the command must get the default (`yes | head` must end quietly).
    sys::reset_signal(libc::SIGPIPE);
    fill_stdio();
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cli.verbose {
        trace::enable();
    }
    if let Some(shell) = cli.completions {
        use std::io::Write;
        let _ = std::io::stdout().write_all(&cli::completions(shell));
        return 0;
    }
    let host = host::Host::gather();
    if cli.doctor {
        return doctor::run(&host, cli.json);
    }
    if let Some(code) = tools::run(&cli, &host) {
        return code;
    }
    if let Some(code) = manage::run(&cli, &host) {
        return code;
    }
    let mut plan = match plan::Plan::build(&cli, &host, &host::RealFs) {
        Ok(p) => p,
        Err(e) => return failed(&e, cli.status_fd),
    };
    if cli.dry_run {
        println!("{}", plan.to_json());
        return 0;
    }
    announce(&plan);
    let watched = watched_dirs(&plan);
    let (stages, notes) = vcs_stage::begin(&mut plan);
    for n in notes {
        eprintln!("sbx: warning: {}", text::escape(&n));
    }
    let started = std::time::SystemTime::now();
    let terminal = tty::save();
    let mut staged = Vec::new();
    let code = match launch::run(&plan, &mut staged) {
        Ok(code) => code,
        Err(e) => failed(&e, plan.status_fd),
    };
    terminal.restore();
    launch::unblock_signals();
    name_new_repositories(&watched, started);
    // After the look for new repositories: writing back changes the git
    // directory's own change time.
    let report = vcs_stage::finish(stages, staged);
    if !plan.quiet {
        for n in &report.notices {
            eprintln!("sbx: {}", text::escape(n));
        }
    }
    for w in &report.warnings {
        eprintln!("sbx: warning: {}", text::escape(w));
    }
    // sbx exits now, and its memory goes with it: freeing the plan's many small
    // allocations first would only delay the exit its caller waits for.
    std::mem::forget((plan, host, cli));
    code
}

/// Started with stdin, stdout or stderr closed, sbx's own descriptors would take
/// those numbers and reach the command as its stdio: fill them with /dev/null.
fn fill_stdio() {
    for fd in 0..3 {
        if !sys::fd_is_open(fd) {
            // open(2) returns the lowest free descriptor: this one (kept open for the
            // rest of sbx's life).
            if let Ok(null) = sys::open_inheritable(c"/dev/null", libc::O_RDWR) {
                std::mem::forget(null);
            }
        }
    }
}

/// The command line; Err: the status to leave with (help and version: 0).
fn parse_cli() -> std::result::Result<cli::Cli, i32> {
    cli::parse(std::env::args_os()).map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        // The message quotes what was typed (perhaps pasted from a file name):
        // escaped, like everything sbx prints that it did not write itself.
        _ => {
            eprint!("{}", text::escape_lines(&e.to_string()));
            EXIT_SETUP
        }
    })
}

/// sbx's own failure: said, and told to a tool waiting on --status-fd.
fn failed(e: &error::Error, status_fd: Option<i32>) -> i32 {
    eprintln!("sbx: {e}");
    if let Some(fd) = status_fd.filter(|fd| status::usable(*fd)) {
        status::write(fd, &status::error_object(e));
    }
    e.code
}

/// The plan's warnings, notices (not with -q) and, with -v, what it enforces and
/// skipped.
fn announce(plan: &plan::Plan) {
    for w in &plan.warnings {
        eprintln!("sbx: warning: {}", text::escape(w));
    }
    if !plan.quiet {
        for n in &plan.notices {
            eprintln!("sbx: {}", text::escape(n));
        }
    }
    trace::step("launcher", || "plan built".into());
    for line in &plan.enforcement {
        trace::step("launcher", || format!("enforced: {line}"));
    }
    for line in &plan.skipped {
        trace::step("launcher", || format!("skipped: {line}"));
    }
}

/// The writable directories where a repository the sandbox creates is looked for
/// afterwards: it cannot be made read-only beforehand (nothing is there to bind).
fn watched_dirs(plan: &plan::Plan) -> Vec<std::path::PathBuf> {
    if plan.vcs == profile::schema::VcsMode::Writable {
        return Vec::new();
    }
    plan.mounts
        .iter()
        .filter_map(|m| match &m.op {
            // Not the objects, refs and logs of a staged git directory: they are in
            // one already.
            plan::MountOp::Bind {
                src,
                dst,
                access: plan::Access::ReadWrite,
            } if src.is_dir() && !plan.git_staged.iter().any(|s| dst.starts_with(&s.dst)) => {
                Some(src.clone())
            }
            _ => None,
        })
        .collect()
}

/// Name each repository the run created in `watched`, before the user runs git there.
fn name_new_repositories(watched: &[std::path::PathBuf], started: std::time::SystemTime) {
    if watched.is_empty() {
        return;
    }
    let since = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    for (p, changed) in plan::vcs::new_repositories(watched) {
        if changed >= since {
            eprintln!(
                "sbx: warning: the sandbox created {} in a writable directory: git or hg run \
                 there on the host would execute its configuration (hooks, core.fsmonitor); \
                 look at it, or remove it, before you use git there",
                text::escape(&p.to_string_lossy())
            );
        }
    }
}

//! sbx: a rootless sandbox for Linux. `main` parses the command line, builds the
//! [`plan::Plan`] (all decisions, no side effects) and hands it to [`launch`].
//!
//! Modules follow the launch sequence of DESIGN.md §1: `cli` and `host` feed `plan`;
//! `launch` drives `userns` (id maps), `net` (loopback), `mount` (the new root),
//! then PID 1 and `exec` (`caps`, `seccomp`, execve). `sys` is the one syscall layer.

pub mod caps;
pub mod cli;
pub mod error;
pub mod exec;
pub mod host;
pub mod launch;
pub mod mount;
pub mod msg;
pub mod net;
pub mod plan;
pub mod profile;
pub mod seccomp;
pub mod sys;
pub mod tools;
pub mod trace;
pub mod userns;

use error::EXIT_SETUP;

/// The whole program; returns the exit status.
pub fn main() -> i32 {
    // Rust starts with SIGPIPE ignored, and an ignored disposition survives execve:
    // the command must get the default (`yes | head` must end quietly).
    sys::reset_signal(libc::SIGPIPE);
    let cli = match cli::parse(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_SETUP,
            };
        }
    };
    if cli.verbose {
        trace::enable();
    }
    let host = host::Host::gather();
    if let Some(code) = tools::run(&cli, &host) {
        return code;
    }
    let plan = match plan::Plan::build(&cli, &host, &host::RealFs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sbx: {e}");
            return e.code;
        }
    };
    if cli.dry_run {
        println!("{}", plan.to_json());
        return 0;
    }
    if !cli.quiet {
        for n in &plan.notices {
            eprintln!("sbx: {n}");
        }
    }
    trace::step("launcher", || "plan built".into());
    match launch::run(&plan) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sbx: {e}");
            e.code
        }
    }
}

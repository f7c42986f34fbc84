//! `-v`: each setup step on stderr, stamped with the microseconds since sbx started
//! and the process it ran in, so a slow or failing step can be found.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
static START_NS: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u64 {
    crate::sys::monotonic_ns()
}

pub fn enable() {
    START_NS.store(now_ns(), Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
}

pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Print one step; `role` is the process (launcher, init, command).
pub fn step(role: &str, what: impl FnOnce() -> String) {
    if on() {
        let us = (now_ns() - START_NS.load(Ordering::Relaxed)) / 1000;
        // One write(2) per line: the launcher, PID 1 and the command's process trace at
        // the same time.
        let line = format!("sbx: [{us:>6}µs {role}] {}\n", crate::text::escape(&what()));
        let _ = crate::sys::write_all(2, line.as_bytes());
    }
}

//! The `dbus` abstraction's proxy: xdg-dbus-proxy, started by the launcher before the
//! sandbox (its socket must exist when PID 1 takes the bind sources) and stopped
//! after it. The proxy writes a byte to `--fd` once its socket listens and exits when
//! that pipe's other end closes (flatpak's protocol); a parent-death signal covers a
//! launcher killed outright.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::plan::dbus::DbusPlan;
use crate::sys;

const STEP: &str = "dbus (xdg-dbus-proxy)";
/// The proxy listens within milliseconds; a loaded machine gets far longer.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

pub struct Proxy {
    pid: libc::pid_t,
    /// Our end of the readiness pipe: closing it stops the proxy.
    ready: Option<OwnedFd>,
    dir: std::path::PathBuf,
}

pub fn start(p: &DbusPlan, uid: u32) -> Result<Proxy> {
    if let Some(records) = p.dir.parent() {
        crate::record::ensure_dir(records, uid)?;
    }
    let _ = std::fs::remove_dir_all(&p.dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&p.dir)
        .map_err(|e| Error::new(STEP, format!("mkdir {}: {e}", p.dir.display())))?;
    let (r, w) = sys::pipe().map_err(|e| e.at(STEP))?;
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new(&p.program);
    cmd.arg(format!("--fd={wfd}"))
        .arg(&p.upstream)
        .arg(p.dir.join("bus"))
        .args(&p.filter)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let pid = sys::spawn_helper(&mut cmd, vec![wfd])
        .map_err(|e| Error::new(STEP, format!("cannot start {}: {e}", p.program.display())))?;
    drop(w);
    let proxy = Proxy {
        pid,
        ready: Some(r),
        dir: p.dir.clone(),
    };
    let ready = proxy
        .ready
        .as_ref()
        .map(|r| sys::await_ready(r.as_fd(), READY_WITHIN));
    if let Some(Err(why)) = ready {
        let status = proxy.stop();
        return Err(Error::new(
            STEP,
            format!(
                "xdg-dbus-proxy: {why} (status {}; is {} a bus?)",
                status.map(sys::exit_code).unwrap_or(-1),
                p.upstream
            ),
        ));
    }
    Ok(proxy)
}

impl Proxy {
    /// Stop the proxy, reap it and remove its socket directory.
    pub fn stop(mut self) -> Option<i32> {
        self.ready = None;
        sys::kill(self.pid, libc::SIGKILL);
        let status = sys::waitpid(self.pid, 0).ok().flatten().map(|(_, s)| s);
        let _ = std::fs::remove_dir_all(&self.dir);
        status
    }
}

//! The network namespace's loopback. A new network namespace has only `lo`, down;
//! one SIOCSIFFLAGS brings it up and the kernel adds 127.0.0.1/8 and ::1 itself
//! (netdevice(7), SIOCSIFFLAGS: an ioctl, not bwrap's rtnetlink exchange).

use crate::error::{Error, Result};
use crate::sys;

pub fn loopback_up() -> Result<()> {
    let step = "network namespace: bring up lo";
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(Error::sys(
            step,
            "socket(AF_INET, SOCK_DGRAM)",
            sys::errno(),
        ));
    }
    // SAFETY: ifreq is plain data; the name fits in IFNAMSIZ.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: valid fd and ifreq.
    let r = unsafe {
        ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr)
    };
    let e = sys::errno();
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(s) };
    if r < 0 {
        return Err(Error::sys(step, "ioctl(lo, SIOCSIFFLAGS, IFF_UP)", e));
    }
    Ok(())
}

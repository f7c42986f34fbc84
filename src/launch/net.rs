//! The network namespace's loopback. A new network namespace has only `lo`, down;
//! one SIOCSIFFLAGS brings it up and the kernel adds 127.0.0.1/8 and ::1 itself
//! (netdevice(7), SIOCSIFFLAGS: an ioctl, not bwrap's rtnetlink exchange).

use crate::error::Result;
use crate::sys;

pub fn loopback_up() -> Result<()> {
    sys::interface_up(c"lo").map_err(|e| e.at("network namespace: bring up lo"))
}

//! Typed messages between the launcher, PID 1 and the command's process over socketpairs
//! (SOCK_SEQPACKET: one message per read, EOF when the peer is gone).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToParent {
    /// PID 1 has started the command: the sandbox is set up.
    Started,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToChild {
    /// The id-map helpers are running (to PID 1, which waits for it before it works).
    HelpersStarted,
    MapsWritten,
    /// `--net user`: pasta has configured the network namespace (to PID 1).
    NetReady,
    /// `--info-fd`: the launcher has read PID 1's namespaces (to PID 1, which waits
    /// for it before it becomes non-dumpable).
    NamespacesRead,
}

pub struct Channel(OwnedFd);

pub fn pair() -> Result<(Channel, Channel)> {
    let mut fds = [0; 2];
    // SAFETY: valid out array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Error::sys(
            "launch",
            "socketpair(AF_UNIX, SOCK_SEQPACKET)",
            sys::errno(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        Ok((
            Channel(OwnedFd::from_raw_fd(fds[0])),
            Channel(OwnedFd::from_raw_fd(fds[1])),
        ))
    }
}

impl Channel {
    fn send_bytes(&self, b: [u8; 5]) {
        // A failed send means the peer is gone; the receiving side's EOF handles that.
        let _ = sys::write_all(self.0.as_raw_fd(), &b);
    }

    fn recv_bytes(&self) -> Option<[u8; 5]> {
        let mut b = [0u8; 5];
        loop {
            // SAFETY: valid buffer.
            let n = unsafe { libc::read(self.0.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
            if n < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            return (n == 5).then_some(b);
        }
    }

    pub fn send_parent(&self, m: ToParent) {
        let tag = match m {
            ToParent::Started => 3u8,
        };
        self.send_bytes([tag, 0, 0, 0, 0]);
    }

    pub fn recv_parent(&self) -> Option<ToParent> {
        match self.recv_bytes()?[0] {
            3 => Some(ToParent::Started),
            _ => None,
        }
    }

    pub fn send_child(&self, m: ToChild) {
        let code = match m {
            ToChild::MapsWritten => 1,
            ToChild::NetReady => 3,
            ToChild::HelpersStarted => 4,
            ToChild::NamespacesRead => 5,
        };
        self.send_bytes([code, 0, 0, 0, 0]);
    }

    pub fn recv_child(&self) -> Option<ToChild> {
        match self.recv_bytes()?[0] {
            1 => Some(ToChild::MapsWritten),
            3 => Some(ToChild::NetReady),
            4 => Some(ToChild::HelpersStarted),
            5 => Some(ToChild::NamespacesRead),
            _ => None,
        }
    }
}

/// Run `f` on a one-byte message with room for one descriptor in its control data.
fn with_fd_msg<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data; the buffers it points to outlive `f`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    f(&mut msg)
}

impl Channel {
    /// Pass a descriptor (SCM_RIGHTS).
    pub fn send_fd(&self, fd: BorrowedFd) -> Result<()> {
        let r = with_fd_msg(|msg| {
            // SAFETY: the control buffer has room for one header and one fd.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd.as_raw_fd());
                libc::sendmsg(self.0.as_raw_fd(), msg, 0)
            }
        });
        if r < 0 {
            return Err(Error::sys(
                "pass descriptor",
                "sendmsg(SCM_RIGHTS)",
                sys::errno(),
            ));
        }
        Ok(())
    }

    /// Receive a descriptor sent with [`Channel::send_fd`]; `None` if the peer is gone.
    pub fn recv_fd(&self) -> Option<OwnedFd> {
        with_fd_msg(|msg| {
            loop {
                // SAFETY: valid socket and message buffers.
                let r = unsafe { libc::recvmsg(self.0.as_raw_fd(), msg, libc::MSG_CMSG_CLOEXEC) };
                if r < 0 && sys::errno() == libc::EINTR {
                    continue;
                }
                if r <= 0 {
                    return None;
                }
                break;
            }
            // SAFETY: the kernel filled the control buffer; the header is checked first.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(msg);
                if c.is_null()
                    || (*c).cmsg_level != libc::SOL_SOCKET
                    || (*c).cmsg_type != libc::SCM_RIGHTS
                {
                    return None;
                }
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
                Some(OwnedFd::from_raw_fd(fd))
            }
        })
    }
}

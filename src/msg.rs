//! Typed messages between the launcher, PID 1 and the command's process over socketpairs
//! (SOCK_SEQPACKET: one message per read, EOF when the peer is gone).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::sys;

/// Messages to the process that started this one (PID 1 to the launcher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToParent {
    /// PID 1 has started the command: the sandbox is set up (a pidfd follows).
    Started,
}

/// Messages to a child (the launcher to PID 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToChild {
    /// The id-map helpers are running (to PID 1, which waits for it before it works).
    HelpersStarted,
    /// The helpers have written the id maps: PID 1 may create files.
    MapsWritten,
    /// `--net user`: pasta has configured the network namespace (to PID 1).
    NetReady,
    /// `--info-fd`: the launcher has read PID 1's namespaces (to PID 1, which waits
    /// for it before it becomes non-dumpable).
    NamespacesRead,
}

/// A message: one byte on the wire, each variant its own.
pub trait Message: Copy + Eq + std::fmt::Debug + 'static {
    const ALL: &'static [Self];
    fn tag(self) -> u8;
}

impl Message for ToParent {
    const ALL: &'static [Self] = &[ToParent::Started];
    fn tag(self) -> u8 {
        match self {
            ToParent::Started => b'S',
        }
    }
}

impl Message for ToChild {
    const ALL: &'static [Self] = &[
        ToChild::HelpersStarted,
        ToChild::MapsWritten,
        ToChild::NetReady,
        ToChild::NamespacesRead,
    ];
    fn tag(self) -> u8 {
        match self {
            ToChild::HelpersStarted => b'H',
            ToChild::MapsWritten => b'M',
            ToChild::NetReady => b'N',
            ToChild::NamespacesRead => b'R',
        }
    }
}

/// What came when a message or a gate step was expected.
#[derive(Debug, PartialEq, Eq)]
pub enum Unexpected {
    /// The peer is gone (EOF): it failed and said why, or was killed.
    Gone,
    /// Something else came: a protocol error, named.
    Other { expected: String, got: String },
}

impl Unexpected {
    fn other(expected: impl std::fmt::Debug, got: String) -> Unexpected {
        Unexpected::Other {
            expected: format!("{expected:?}"),
            got,
        }
    }

    /// Leave the process: silently when the peer is gone (it reported why), with
    /// the protocol error otherwise.
    pub fn exit(self, who: &str) -> ! {
        if let Unexpected::Other { expected, got } = self {
            let line = format!("sbx: {who}: expected {expected}, got {got}\n");
            let _ = sys::write_all(2, line.as_bytes());
        }
        // SAFETY: leaving the process without unwinding (a forked child).
        unsafe { libc::_exit(crate::error::EXIT_SETUP) }
    }
}

/// The steps of the gate PID 1 holds over the command's process: one byte each on
/// a pipe, in this order. EOF before the last: PID 1 failed, and the command must
/// not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go: make the network namespace, drop capabilities.
    Go,
    /// The new root is in place and the old one detached: paths may be walked.
    RootReady,
    /// PID 1 has shed its privileges: seccomp, then execve.
    Exec,
}

impl Gate {
    fn tag(self) -> u8 {
        match self {
            Gate::Go => b'g',
            Gate::RootReady => b'r',
            Gate::Exec => b'x',
        }
    }

    /// Let the command's process pass this step. A process that has already ended
    /// (it failed, and said why) is not an error here: PID 1 goes on and reaps it,
    /// and its status is the sandbox's. (The write's SIGPIPE does not reach PID 1: a
    /// pid namespace's init gets no signal it has no handler for, pid_namespaces(7).)
    pub fn open(self, gate: BorrowedFd) {
        let _ = sys::write_all(gate.as_raw_fd(), &[self.tag()]);
    }

    /// Wait until PID 1 opens this step; never go ahead on EOF or on another step.
    pub fn pass(self, gate: BorrowedFd) -> std::result::Result<(), Unexpected> {
        match read_exact::<1>(gate) {
            None => Err(Unexpected::Gone),
            Some([b]) if b == self.tag() => Ok(()),
            Some([b]) => Err(Unexpected::other(
                self,
                shown(b, &[Gate::Go, Gate::RootReady, Gate::Exec], Gate::tag),
            )),
        }
    }
}

/// How a received byte is named in an error: the variant it is, or the byte.
fn shown<M: std::fmt::Debug + Copy>(b: u8, all: &[M], tag: fn(M) -> u8) -> String {
    match all.iter().find(|m| tag(**m) == b) {
        Some(m) => format!("{m:?}"),
        None => format!("byte {b:#04x}"),
    }
}

/// One read of exactly `N` bytes (a SEQPACKET message, or a pipe's next bytes);
/// None on EOF, an error or another length.
fn read_exact<const N: usize>(fd: BorrowedFd) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    loop {
        // SAFETY: valid buffer of N bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), N) };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        return (n == N as isize).then_some(b);
    }
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
    /// Send `m`. A failed send means the peer is gone; the receiving side's EOF
    /// handles that.
    pub fn send<M: Message>(&self, m: M) {
        let _ = sys::write_all(self.0.as_raw_fd(), &[m.tag()]);
    }

    /// The next message, which must be `want`.
    pub fn expect<M: Message>(&self, want: M) -> std::result::Result<(), Unexpected> {
        // A two-byte buffer: a longer message is a protocol error, not a prefix.
        let mut b = [0u8; 2];
        let n = loop {
            // SAFETY: valid buffer.
            let n = unsafe { libc::read(self.0.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
            if n < 0 && sys::errno() == libc::EINTR {
                continue;
            }
            break n;
        };
        match n {
            1 if b[0] == want.tag() => Ok(()),
            1 => Err(Unexpected::other(want, shown(b[0], M::ALL, M::tag))),
            n if n <= 0 => Err(Unexpected::Gone),
            n => Err(Unexpected::other(want, format!("a message of {n} bytes"))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn each_message_and_gate_step_has_its_own_byte() {
        let mut tags: Vec<u8> = ToChild::ALL.iter().map(|m| m.tag()).collect();
        tags.extend(ToParent::ALL.iter().map(|m| m.tag()));
        let n = tags.len();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), n);
        let gates = [Gate::Go, Gate::RootReady, Gate::Exec];
        let mut g: Vec<u8> = gates.iter().map(|s| s.tag()).collect();
        g.dedup();
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn a_wrong_or_missing_message_is_named() {
        let (a, b) = pair().unwrap();
        a.send(ToChild::MapsWritten);
        assert_eq!(b.expect(ToChild::MapsWritten), Ok(()));
        a.send(ToChild::NetReady);
        assert_eq!(
            b.expect(ToChild::HelpersStarted),
            Err(Unexpected::Other {
                expected: "HelpersStarted".into(),
                got: "NetReady".into()
            })
        );
        sys::write_all(a.0.as_raw_fd(), &[0x07]).unwrap();
        assert_eq!(
            b.expect(ToChild::MapsWritten),
            Err(Unexpected::Other {
                expected: "MapsWritten".into(),
                got: "byte 0x07".into()
            })
        );
        sys::write_all(a.0.as_raw_fd(), b"MM").unwrap();
        assert!(matches!(
            b.expect(ToChild::MapsWritten),
            Err(Unexpected::Other { got, .. }) if got == "a message of 2 bytes"
        ));
        drop(a);
        assert_eq!(b.expect(ToChild::MapsWritten), Err(Unexpected::Gone));
    }

    #[test]
    fn a_gate_step_out_of_order_or_a_closed_gate_stops_the_command() {
        let (rx, tx) = sys::pipe().unwrap();
        Gate::Go.open(tx.as_fd());
        assert_eq!(Gate::Go.pass(rx.as_fd()), Ok(()));
        Gate::Exec.open(tx.as_fd());
        assert_eq!(
            Gate::RootReady.pass(rx.as_fd()),
            Err(Unexpected::Other {
                expected: "RootReady".into(),
                got: "Exec".into()
            })
        );
        drop(tx);
        assert_eq!(Gate::Exec.pass(rx.as_fd()), Err(Unexpected::Gone));
    }
}

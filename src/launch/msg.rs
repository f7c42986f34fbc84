//! Typed messages between the launcher, PID 1 and the command's process over socketpairs
//! (SOCK_SEQPACKET: one message per read, EOF when the peer is gone).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::Result;
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
        sys::exit_now(crate::error::EXIT_SETUP)
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
    (sys::read_once(fd, &mut b) == Ok(N)).then_some(b)
}

pub struct Channel(OwnedFd);

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = sys::seqpacket_pair().map_err(|e| e.at("launch"))?;
    Ok((Channel(a), Channel(b)))
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
        match sys::read_once(self.0.as_fd(), &mut b) {
            Ok(1) if b[0] == want.tag() => Ok(()),
            Ok(1) => Err(Unexpected::other(want, shown(b[0], M::ALL, M::tag))),
            Ok(0) | Err(_) => Err(Unexpected::Gone),
            Ok(n) => Err(Unexpected::other(want, format!("a message of {n} bytes"))),
        }
    }
}

impl Channel {
    /// Pass a descriptor (SCM_RIGHTS).
    pub fn send_fd(&self, fd: BorrowedFd) -> Result<()> {
        sys::send_fd(self.0.as_fd(), fd).map_err(|e| e.at("pass descriptor"))
    }

    /// Receive a descriptor sent with [`Channel::send_fd`]; `None` if the peer is gone.
    pub fn recv_fd(&self) -> Option<OwnedFd> {
        sys::recv_fd(self.0.as_fd())
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

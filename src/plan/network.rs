//! The network part of the plan: the mode, published ports, and for `user` mode the
//! exact pasta command line (pure data; the launcher only adds the descriptors).
//!
//! Rootless sandboxes cannot make veth pairs or bridges (that needs CAP_NET_ADMIN in
//! the host's network namespace, which is why firejail is setuid); pasta (package
//! `passt`) instead joins the sandbox's namespaces and carries its traffic through
//! ordinary sockets of the user, as podman and nsjail use it. Addresses are fixed, so
//! `host.sbx.internal` and the resolver are the same on every host:
//! the sandbox is 10.0.2.100/24 and fd00:5bc::100, the gateway 10.0.2.2 and fd00:5bc::1.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::NetArg;
use crate::error::{Error, Result};
use crate::plan::{Mount, MountOp};

pub const PASTA: &str = "/usr/bin/pasta";
pub const GUEST_V4: &str = "10.0.2.100";
pub const GATEWAY_V4: &str = "10.0.2.2";
pub const GUEST_V6: &str = "fd00:5bc::100";
pub const GATEWAY_V6: &str = "fd00:5bc::1";
/// The host's loopback inside, with `user:host-loopback` (podman's
/// host.containers.internal).
pub const HOST_ALIAS: &str = "host.sbx.internal";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    pub addr: IpAddr,
    pub host_port: u16,
    pub sandbox_port: u16,
    pub proto: Proto,
    /// The `--publish` value as given.
    pub origin: String,
}

impl Publish {
    /// pasta's spelling: `ADDR/HOSTPORT:SANDBOXPORT`.
    pub fn pasta_spec(&self) -> String {
        format!("{}/{}:{}", self.addr, self.host_port, self.sandbox_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pasta {
    pub program: PathBuf,
    /// Everything but the namespace and readiness descriptors, which the launcher adds.
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetPlan {
    pub mode: NetArg,
    pub publish: Vec<Publish>,
    pub pasta: Option<Pasta>,
}

impl NetPlan {
    /// The sandbox has a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        self.mode != NetArg::Host
    }
}

/// `[ADDR/]HOSTPORT:SANDBOXPORT[/tcp|/udp]`.
pub fn parse_publish(spec: &str) -> Result<Publish> {
    let what = format!("--publish {spec}");
    let bad = |why: &str| Error::new(what.clone(), why.to_string());
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        _ => (spec, Proto::Tcp),
    };
    let (addr, ports) = match rest.split_once('/') {
        Some((a, p)) => (
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| bad(&format!("{a:?} is not an IP address")))?,
            p,
        ),
        None => (IpAddr::from([127, 0, 0, 1]), rest),
    };
    let (h, s) = ports
        .split_once(':')
        .ok_or_else(|| bad("expected HOSTPORT:SANDBOXPORT"))?;
    let port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(&format!("{p:?} is not a port (1-65535)"))),
        }
    };
    Ok(Publish {
        addr,
        host_port: port(h)?,
        sandbox_port: port(s)?,
        proto,
        origin: spec.to_string(),
    })
}

/// The network plan and the files `user` mode adds (`/etc/resolv.conf` pointing at
/// pasta's DNS forwarder, `/etc/hosts` with the hostname and, when asked,
/// `host.sbx.internal`).
pub fn plan(
    mode: NetArg,
    publish: &[String],
    dns: &[String],
    hostname: &str,
    pasta_present: bool,
    tun_usable: bool,
) -> Result<(NetPlan, Vec<Mount>)> {
    let publish = publish
        .iter()
        .map(|p| parse_publish(p))
        .collect::<Result<Vec<_>>>()?;
    let user = matches!(mode, NetArg::User | NetArg::UserHostLoopback);
    if !user {
        if let Some(p) = publish.first() {
            return Err(Error::new(
                format!("--publish {}", p.origin),
                "ports can only be published with --net user (pasta)",
            ));
        }
        if !dns.is_empty() {
            return Err(Error::new("--dns", "only applies with --net user"));
        }
        return Ok((
            NetPlan {
                mode,
                publish,
                pasta: None,
            },
            Vec::new(),
        ));
    }
    let dns = dns
        .iter()
        .map(|d| {
            d.parse::<IpAddr>()
                .map_err(|_| Error::new("--dns", format!("{d:?} is not an IP address")))
        })
        .collect::<Result<Vec<_>>>()?;
    if !pasta_present {
        return Err(Error::new(
            "--net user",
            format!("{PASTA} is missing: install it with `apt-get install passt`"),
        ));
    }
    if !tun_usable {
        return Err(Error::new(
            "--net user",
            "pasta needs /dev/net/tun readable and writable by you (Debian's udev makes it \
             0666; here it is not: as root, `chmod 0666 /dev/net/tun`)",
        ));
    }
    let args = pasta_args(mode, &publish, &dns);
    let files = net_files(mode, hostname);
    Ok((
        NetPlan {
            mode,
            publish,
            pasta: Some(Pasta {
                program: PASTA.into(),
                args,
            }),
        },
        files,
    ))
}

/// pasta's command line: the addresses, nothing forwarded but what is published,
/// DNS through the gateway.
fn pasta_args(mode: NetArg, publish: &[Publish], dns: &[IpAddr]) -> Vec<String> {
    let mut a: Vec<String> = [
        "-f",
        "-q",
        "--config-net",
        "-a",
        GUEST_V4,
        "-n",
        "24",
        "-g",
        GATEWAY_V4,
        "-a",
        GUEST_V6,
        "-g",
        GATEWAY_V6,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // pasta's default maps the gateway to the host's loopback: that is where local
    // databases, agents and dev servers listen, so it is opt-in.
    if mode == NetArg::User {
        a.push("--no-map-gw".into());
    }
    // Nothing is forwarded unless published: pasta's default (`auto`) would mirror
    // every port bound inside onto every host address, and every host port inside.
    for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
        let specs: Vec<String> = publish
            .iter()
            .filter(|p| p.proto == proto)
            .map(Publish::pasta_spec)
            .collect();
        if specs.is_empty() {
            a.extend([flag.to_string(), "none".into()]);
        }
        for s in specs {
            a.extend([flag.to_string(), s]);
        }
    }
    a.extend(["-T", "none", "-U", "none"].map(String::from));
    // Queries to the gateway's port 53 go to the host's resolver (or --dns): replies
    // come from the gateway address, so the forwarder must be the gateway.
    a.extend(["--dns-forward".into(), GATEWAY_V4.into()]);
    for d in dns {
        a.extend(["-D".into(), d.to_string()]);
    }
    a
}

/// The sandbox's /etc/resolv.conf and /etc/hosts under `--net user`.
fn net_files(mode: NetArg, hostname: &str) -> Vec<Mount> {
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{GUEST_V4}\t{hostname}\n{GUEST_V6}\t{hostname}\n"
    );
    if mode == NetArg::UserHostLoopback {
        hosts.push_str(&format!(
            "{GATEWAY_V4}\t{HOST_ALIAS}\n{GATEWAY_V6}\t{HOST_ALIAS}\n"
        ));
    }
    let file = |dst: &str, content: String| Mount {
        op: MountOp::File {
            dst: dst.into(),
            content: content.into_bytes(),
            mode: 0o644,
        },
        origin: "--net user".into(),
    };
    vec![
        file("/etc/resolv.conf", format!("nameserver {GATEWAY_V4}\n")),
        file("/etc/hosts", hosts),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.sandbox_port, p.proto),
            (8080, 80, Proto::Tcp)
        );
        assert_eq!(p.pasta_spec(), "127.0.0.1/8080:80");
        let p = parse_publish("0.0.0.0/5353:53/udp").unwrap();
        assert_eq!(p.pasta_spec(), "0.0.0.0/5353:53");
        assert_eq!(p.proto, Proto::Udp);
        let p = parse_publish("[::1]/8443:443/tcp").unwrap();
        assert_eq!(p.pasta_spec(), "::1/8443:443");
        for bad in ["80", "0:80", "80:70000", "x/1:2", "1:2/sctp", ":"] {
            let e = parse_publish(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn user_mode_keeps_the_host_loopback_closed_unless_asked() {
        let (n, files) = plan(NetArg::User, &["8080:80".into()], &[], "sbx", true, true).unwrap();
        let args = n.pasta.unwrap().args;
        assert!(args.contains(&"--no-map-gw".to_string()));
        let joined = args.join(" ");
        assert!(
            joined.contains("-t 127.0.0.1/8080:80 -u none -T none -U none"),
            "{joined}"
        );
        assert_eq!(files.len(), 2);
        let (n, files) = plan(
            NetArg::UserHostLoopback,
            &[],
            &["127.0.0.1".into()],
            "box",
            true,
            true,
        )
        .unwrap();
        let args = n.pasta.unwrap().args;
        assert!(!args.contains(&"--no-map-gw".to_string()));
        assert!(args
            .join(" ")
            .ends_with("--dns-forward 10.0.2.2 -D 127.0.0.1"));
        let MountOp::File { content, .. } = &files[1].op else {
            panic!()
        };
        let content = String::from_utf8_lossy(content);
        assert!(content.contains("10.0.2.2\thost.sbx.internal") && content.contains("\tbox\n"));
    }

    #[test]
    fn what_user_mode_needs_is_checked_first() {
        let e = plan(NetArg::User, &[], &[], "sbx", false, true).unwrap_err();
        assert!(e.to_string().contains("apt-get install passt"), "{e}");
        let e = plan(NetArg::User, &[], &[], "sbx", true, false).unwrap_err();
        assert!(e.to_string().contains("/dev/net/tun"), "{e}");
        let e = plan(NetArg::None, &["1:2".into()], &[], "sbx", true, true).unwrap_err();
        assert!(e.to_string().contains("--net user"), "{e}");
        assert!(plan(NetArg::Host, &[], &["1.1.1.1".into()], "sbx", true, true).is_err());
    }
}

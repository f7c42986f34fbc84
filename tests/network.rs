//! The network modes, as the test users. Test traffic stays on the host's loopback
//! and inside the sandboxes' own namespaces: `user` mode's outbound path is proven
//! against a server on the host's loopback reached through the opt-in mapping, and
//! name resolution against a resolver this test runs on 127.0.0.1:53 and hands to
//! pasta with `--dns`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn pasta_available() -> bool {
    if !std::path::Path::new("/usr/bin/pasta").exists() {
        skip(
            Lacking::Setup,
            "/usr/bin/pasta is missing (tests/setup.sh installs passt)",
        );
        return false;
    }
    true
}

/// A host server on 127.0.0.1 answering every connection with `reply`.
fn host_server(reply: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(reply.as_bytes());
        }
    });
    port
}

/// Inside: connect to HOST:PORT and print what it says, or the error's errno name.
const CLIENT: &str = "import socket, sys, errno\n\
try:\n    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); print(s.recv(100).decode())\n\
except socket.gaierror:\n    print('no-such-name')\n\
except OSError as e:\n    print(errno.errorcode.get(e.errno, e))\n";

fn connect_from(u: &User, net: &str, host: &str, port: u16) -> String {
    let o = run(
        u,
        &[
            "-q",
            "--net",
            net,
            "--",
            "python3",
            "-c",
            CLIENT,
            host,
            &port.to_string(),
        ],
    );
    assert_eq!(code(&o), 0, "as {} --net {net}: {}", u.name, stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn none_has_only_loopback_and_keeps_the_host_out() {
    let port = host_server("host-service");
    for u in users() {
        let out = sh(
            u,
            &["--net", "none"],
            "ls /sys/class/net 2>/dev/null || awk 'NR>2 {sub(\":\",\"\",$1); print $1}' /proc/net/dev; \
             python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); \
             c = socket.create_connection(s.getsockname()); print(\"inside-loopback\", s.accept()[0] is not None)'",
        );
        assert_eq!(out, "lo\ninside-loopback True\n", "as {}", u.name);
        assert_eq!(connect_from(u, "none", "127.0.0.1", port), "ECONNREFUSED");
    }
}

#[test]
fn host_reaches_the_host_loopback() {
    let port = host_server("host-service");
    for u in users() {
        assert_eq!(connect_from(u, "host", "127.0.0.1", port), "host-service");
    }
}

#[test]
fn user_mode_reaches_the_host_loopback_only_when_asked() {
    if !pasta_available() {
        return;
    }
    let port = host_server("host-service");
    for u in users() {
        // Without the opt-in: no name for the host, and the sandbox's own loopback is
        // not the host's (pasta mirrors no host port inside).
        assert_eq!(
            connect_from(u, "user", "host.sbx.internal", port),
            "no-such-name"
        );
        assert_eq!(connect_from(u, "user", "127.0.0.1", port), "ECONNREFUSED");
        // With it: outbound TCP through pasta to the host's loopback service.
        assert_eq!(
            connect_from(u, "user:host-loopback", "host.sbx.internal", port),
            "host-service",
            "as {}",
            u.name
        );
        let out = sh(
            u,
            &["--net", "user"],
            "awk 'NR>2 {sub(\":\",\"\",$1); print $1}' /proc/net/dev | sort | tr '\\n' ' '",
        );
        assert!(
            out.contains("lo") && out.split_whitespace().count() == 2,
            "as {}: {out}",
            u.name
        );
    }
}

/// A resolver on the host's 127.0.0.1:53 answering one name; every other name gets
/// NXDOMAIN. Returns None where port 53 cannot be bound (not root).
fn resolver(name: &'static str, addr: [u8; 4]) -> Option<()> {
    let s = match UdpSocket::bind("127.0.0.1:53") {
        Ok(s) => s,
        Err(e) => {
            skip(
                Lacking::Setup,
                &format!("cannot bind 127.0.0.1:53 for the test resolver ({e}); run as root"),
            );
            return None;
        }
    };
    std::thread::spawn(move || loop {
        let mut q = [0u8; 512];
        let Ok((n, from)) = s.recv_from(&mut q) else {
            return;
        };
        let q = &q[..n];
        let mut i = 12;
        let mut labels = Vec::new();
        while i < q.len() && q[i] != 0 {
            let l = q[i] as usize;
            labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + l]).to_lowercase());
            i += l + 1;
        }
        let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
        let question = &q[12..i + 5];
        let hit = labels.join(".") == name && qtype == 1;
        let mut r = Vec::new();
        r.extend_from_slice(&q[0..2]);
        r.extend_from_slice(
            &(0x8180u16 | if labels.join(".") == name { 0 } else { 3 }).to_be_bytes(),
        );
        r.extend_from_slice(&[0, 1, 0, hit as u8, 0, 0, 0, 0]);
        r.extend_from_slice(question);
        if hit {
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            r.extend_from_slice(&addr);
        }
        let _ = s.send_to(&r, from);
    });
    Some(())
}

#[test]
fn user_mode_resolves_names_through_pasta() {
    if !pasta_available() || resolver("probe.sbx.test", [10, 9, 8, 7]).is_none() {
        return;
    }
    for u in users() {
        let out = sh(
            u,
            &["--net", "user", "--dns", "127.0.0.1"],
            "cat /etc/resolv.conf; getent ahostsv4 probe.sbx.test | head -1; getent hosts nothing.sbx.test || echo nx",
        );
        assert_eq!(
            out, "nameserver 10.0.2.2\n10.9.8.7        STREAM probe.sbx.test\nnx\n",
            "as {}",
            u.name
        );
    }
}

/// Is something listening on TCP `port` on the host?
fn host_listening(port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(hex.trim()))
                    && l.split_whitespace().nth(3) == Some("0A")
            })
    })
}

/// Live (not zombie) pasta processes whose parent is `parent`.
fn pastas_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let field = |k: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(k))
                    .and_then(|l| l.split_whitespace().nth(1).map(String::from))
            };
            let pasta = field("Name:")?.starts_with("pas")
                && field("PPid:")? == parent.to_string()
                && field("State:")? != "Z";
            pasta.then_some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn published_ports_reach_a_server_inside_and_nothing_is_left() {
    if !pasta_available() {
        return;
    }
    for u in users() {
        // A free host port, found by binding and releasing it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = "import socket\ns = socket.socket(); s.bind(('0.0.0.0', 8000)); s.listen()\n\
                      print('ready', flush=True)\nc, _ = s.accept(); c.sendall(b'inside-server'); c.close()";
        let child = spawn_until(
            sbx_cmd(
                u,
                [
                    "-q",
                    "--net",
                    "user",
                    "--publish",
                    &format!("{port}:8000"),
                    "--",
                    "python3",
                    "-c",
                    server,
                ],
            )
            .stderr(Stdio::piped()),
            "ready",
            Duration::from_secs(30),
        );
        assert!(
            host_listening(port),
            "as {}: pasta publishes {port}",
            u.name
        );
        let pasta = pastas_of(child.id());
        assert_eq!(pasta.len(), 1, "as {}: sbx runs one pasta", u.name);
        // Debian 12's pasta (2023-03) now and then closes an inbound connection
        // without passing it on (about once in a dozen runs here): the server inside
        // is still waiting then, and a second connection reaches it.
        let mut got = String::new();
        for _ in 0..5 {
            got.clear();
            TcpStream::connect(("127.0.0.1", port))
                .unwrap()
                .read_to_string(&mut got)
                .unwrap();
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got, "inside-server", "as {}", u.name);
        let status = wait_status(child, "publish");
        assert!(status.success(), "as {}: {status:?}", u.name);
        // sbx has stopped and reaped pasta before it exits: nothing of it remains.
        assert!(
            !alive(pasta[0]),
            "as {}: pasta {} is left",
            u.name,
            pasta[0]
        );
        assert!(!host_listening(port), "as {}: {port} still listens", u.name);
    }
}

#[test]
fn a_published_port_in_use_is_an_error_naming_it() {
    if !pasta_available() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for u in users() {
        let spec = format!("{port}:80");
        let o = run(u, &["--net", "user", "--publish", &spec, "--", "true"]);
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains(&format!("--publish {spec}")) && stderr(&o).contains("in use"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        let o = run(u, &["--net", "none", "--publish", &spec, "--", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--net user"), "{}", stderr(&o));
    }
}

#[test]
fn no_mode_reaches_a_host_abstract_socket() {
    let probe = probe_bin();
    let p = probe.to_str().unwrap();
    let name = format!("sbx-net-{}", unique());
    let _l =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let mut modes = vec![("none", "ECONNREFUSED"), ("host", "EPERM")];
    if pasta_available() {
        modes.push(("user", "ECONNREFUSED"));
    }
    for u in users() {
        for (mode, want) in &modes {
            let o = run(
                u,
                &[
                    "-q",
                    "--net",
                    mode,
                    "--ro-bind",
                    p,
                    "--",
                    p,
                    "abstract",
                    &name,
                ],
            );
            assert_eq!(
                stdout(&o),
                format!("{want}\n"),
                "as {} --net {mode}",
                u.name
            );
        }
    }
}

#[test]
fn pasta_dying_mid_run_is_reported() {
    if !pasta_available() {
        return;
    }
    for u in users() {
        let mut child = spawn_until(
            sbx_cmd(
                u,
                [
                    "-q",
                    "--net",
                    "user",
                    "--",
                    "sh",
                    "-c",
                    "echo ready; read x; echo done",
                ],
            )
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
            "ready",
            Duration::from_secs(30),
        );
        let pasta = pastas_of(child.id());
        assert_eq!(pasta.len(), 1);
        // SAFETY: signalling a process this test found by its parent.
        unsafe { libc::kill(pasta[0] as i32, libc::SIGKILL) };
        // sbx reaps it (and says so) as soon as it dies.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{}", pasta[0])).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "sbx did not reap pasta"
            );
            std::thread::yield_now();
        }
        drop(child.stdin.take());
        let o = wait_output(child, "pasta death");
        assert!(
            o.status.success(),
            "as {}: the command goes on: {:?}",
            u.name,
            o.status
        );
        assert!(
            stderr(&o).contains("pasta") && stderr(&o).contains("no outside network"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
    }
}

//! The user namespace and its id maps: the newuidmap path and the single-id path.

mod common;

use common::*;

fn map_lines(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect()
}

#[test]
fn id_maps_follow_the_mapping_path() {
    for u in users() {
        let out = sh(u, &[], "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; cat /proc/self/setgroups");
        let parts: Vec<&str> = out.split("--\n").collect();
        let (uid_map, gid_map, setgroups) =
            (map_lines(parts[0]), map_lines(parts[1]), parts[2].trim());
        match u.subids {
            Some((start, count)) => {
                // The user's own id, and the subordinate range mapped to itself.
                assert_eq!(uid_map.len(), 2, "as {}: {uid_map:?}", u.name);
                assert_eq!(uid_map[0], [u.uid as u64, u.uid as u64, 1]);
                assert_eq!(uid_map[1], [start as u64, start as u64, count as u64]);
                assert_eq!(gid_map.len(), 2, "as {}: {gid_map:?}", u.name);
                assert_eq!(gid_map[0], [u.gid as u64, u.gid as u64, 1]);
                assert_eq!(
                    setgroups, "allow",
                    "newgidmap leaves setgroups allowed with a range"
                );
            }
            None => {
                assert_eq!(uid_map, [[u.uid as u64, u.uid as u64, 1]], "as {}", u.name);
                assert_eq!(gid_map, [[u.gid as u64, u.gid as u64, 1]], "as {}", u.name);
                assert_eq!(
                    setgroups, "deny",
                    "setgroups is denied before a direct gid_map write"
                );
            }
        }
    }
}

#[test]
fn single_id_map_is_announced_unless_quiet() {
    for u in users() {
        let o = run(u, &["true"]);
        assert_eq!(code(&o), 0);
        let announced = stderr(&o).contains("mapping only uid");
        assert_eq!(
            announced,
            u.subids.is_none(),
            "as {}: stderr {:?}",
            u.name,
            stderr(&o)
        );
        let o = run(u, &["-q", "true"]);
        assert!(!stderr(&o).contains("mapping only"), "-q silences it");
    }
}

#[test]
fn command_runs_as_the_invoking_user_or_root_when_asked() {
    for u in users() {
        let out = sh(u, &[], "id -u; id -g");
        assert_eq!(out, format!("{}\n{}\n", u.uid, u.gid), "as {}", u.name);
        let out = sh(
            u,
            &["--uid", "0", "--gid", "0"],
            "id -u; id -g; head -1 /proc/self/uid_map",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..2], ["0", "0"], "as {}", u.name);
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["0", &u.uid.to_string(), "1"],
            "uid 0 inside is the user outside"
        );
        // Root inside holds no capabilities either.
        let out = sh(
            u,
            &["--uid", "0", "--gid", "0"],
            "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status | tr -d '\\t'",
        );
        assert_eq!(
            out,
            "CapInh:0000000000000000\nCapPrm:0000000000000000\nCapEff:0000000000000000\n\
             CapBnd:0000000000000000\nCapAmb:0000000000000000\n",
            "as {}: every set empty for uid 0 inside",
            u.name
        );
    }
}

/// Files owned by the user's subordinate ids (as rootless containers leave them) keep
/// their owners inside; without subordinate ids they show as the overflow id.
#[test]
fn files_owned_by_subordinate_ids_keep_their_owners() {
    if !is_root() {
        skip(
            Lacking::Setup,
            "chown to a subordinate id needs root (run the suite as root)",
        );
        return;
    }
    for u in users() {
        let fx = Fixture::new(u, "subid");
        let f = fx.file("owned", "x", u);
        let sub_uid = u.subids.map(|(s, _)| s + 5).unwrap_or(100_005);
        std::os::unix::fs::chown(&f, Some(sub_uid), Some(sub_uid)).unwrap();
        let bind = format!("{}:/data", fx.path.display());
        let out = sh(u, &["--ro-bind", &bind], "stat -c '%u %g' /data/owned");
        let expect = match u.subids {
            Some(_) => format!("{sub_uid} {sub_uid}\n"),
            None => "65534 65534\n".to_string(),
        };
        assert_eq!(out, expect, "as {}", u.name);
    }
}

#[test]
fn every_namespace_is_new() {
    let host = |ns: &str| std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
    let kinds = ["user", "mnt", "pid", "ipc", "uts", "net", "cgroup"];
    for u in users() {
        let script: String = kinds
            .iter()
            .map(|k| format!("readlink /proc/self/ns/{k};"))
            .collect();
        let out = sh(u, &[], &script);
        assert_eq!(out.lines().count(), kinds.len(), "as {}: {out}", u.name);
        for (k, inside) in kinds.iter().zip(out.lines()) {
            assert_ne!(
                inside,
                host(k).to_str().unwrap(),
                "as {}: {k} namespace is the host's",
                u.name
            );
        }
        let out = sh(u, &["--net", "host"], "readlink /proc/self/ns/net");
        assert_eq!(
            out.trim(),
            host("net").to_str().unwrap(),
            "--net host keeps the host network"
        );
    }
}

/// Run sbx as `u` with no_new_privs already set (as inside sbx, or in a container).
fn under_nnp(u: &User, args: &[&str]) -> std::process::Output {
    let mut c = as_user(u, "setpriv");
    c.arg("--no-new-privs").arg(sbx_bin()).args(args);
    output(c)
}

#[test]
fn unusable_helpers_fall_back_to_the_single_id_map_once() {
    let Some(u) = users().iter().find(|u| u.subids.is_some()) else {
        skip(
            Lacking::Setup,
            "no test user with subordinate ids (run tests/setup.sh as root)",
        );
        return;
    };
    // no_new_privs: the setuid helpers gain nothing. `auto` falls back, saying why.
    let o = under_nnp(u, &["--", "cat", "/proc/self/uid_map"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(map_lines(&stdout(&o)), [[u.uid as u64, u.uid as u64, 1]]);
    let err = stderr(&o);
    assert_eq!(
        err.matches("mapping only uid").count(),
        1,
        "one notice: {err}"
    );
    assert!(err.contains("no_new_privs"), "{err}");
    // Required (--ids subordinate): exit 125 naming the cause.
    let o = under_nnp(u, &["--ids", "subordinate", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("no_new_privs") && stderr(&o).contains("ids"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_helper_that_fails_at_run_time_falls_back_unless_required() {
    if !is_root() {
        skip(
            Lacking::Setup,
            "replacing newgidmap in a private mount namespace needs root",
        );
        return;
    }
    let Some(u) = users().iter().find(|u| u.subids.is_some()) else {
        skip(Lacking::Setup, "no test user with subordinate ids");
        return;
    };
    // In a mount namespace of the test's own, newgidmap is replaced by a copy that
    // is not setuid and whose file capability (CAP_NET_RAW) cannot write a map: it
    // looks usable, and fails when it runs.
    let fx = Fixture::new(u, "helper");
    let copy = fx.path.join("newgidmap");
    std::fs::copy("/usr/bin/newgidmap", &copy).unwrap();
    let setcap = std::process::Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(&copy)
        .status();
    if !setcap.is_ok_and(|s| s.success()) {
        skip(
            Lacking::Setup,
            "setcap (libcap2-bin) is missing or cannot set file capabilities here",
        );
        return;
    }
    let run_in_ns = |args: &str| {
        let script = format!(
            "mount --bind {} /usr/bin/newgidmap && exec setpriv --reuid={} --regid={} --init-groups \
             env -i HOME={} PATH=/usr/bin:/bin {} {args}",
            copy.display(),
            u.uid,
            u.gid,
            u.home.display(),
            sbx_bin().display()
        );
        let mut c = std::process::Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", &script])
            .current_dir("/");
        output(c)
    };
    let o = run_in_ns("-- cat /proc/self/gid_map /proc/self/uid_map");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = map_lines(&stdout(&o));
    assert_eq!(
        lines[0],
        [u.gid as u64, u.gid as u64, 1],
        "single gid map: {lines:?}"
    );
    let err = stderr(&o);
    assert!(
        err.contains("newgidmap") && err.contains("failed") && err.contains("mapping only gid"),
        "{err}"
    );
    assert_eq!(err.matches("mapping only").count(), 1, "{err}");
    let o = run_in_ns("--ids subordinate -- true");
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("newgidmap"), "{}", stderr(&o));
}

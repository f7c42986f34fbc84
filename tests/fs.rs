//! The new root: layout, mounts, read-only binds, and that setup never reaches outside.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

fn mount_points(mountinfo: &str) -> Vec<(String, String, String)> {
    // (mount point, mount options, fstype + super options)
    mountinfo
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dash = f.iter().position(|x| *x == "-").unwrap();
            (f[4].to_string(), f[5].to_string(), f[dash + 1..].join(" "))
        })
        .collect()
}

fn host_entries() -> Vec<&'static str> {
    let mut v = vec!["dev", "etc", "home", "proc", "run", "tmp", "usr"];
    for d in ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"] {
        if Path::new("/").join(d).exists() {
            v.push(d);
        }
    }
    v.sort();
    v
}

#[test]
fn default_root_holds_only_the_granted_entries() {
    for u in users() {
        let out = sh(u, &[], "ls -A /");
        let got: Vec<&str> = out.lines().collect();
        let mut want = host_entries();
        if !u.home.starts_with("/home") {
            want.retain(|e| *e != "home");
        }
        assert_eq!(got, want, "as {}", u.name);
        // Merged /usr links are recreated, not bound.
        let out = sh(u, &[], "readlink /bin; ls -d /home/*");
        if std::fs::read_link("/bin").is_ok() {
            assert!(out.starts_with("usr/bin\n"), "{out}");
        }
        assert!(
            out.ends_with(&format!("{}\n", u.home.display())),
            "home holds only $HOME: {out}"
        );
    }
}

#[test]
fn mount_table_shows_no_setup_scaffolding() {
    for u in users() {
        let out = sh(u, &[], "cat /proc/self/mountinfo");
        let mounts = mount_points(&out);
        let points: BTreeSet<&str> = mounts.iter().map(|m| m.0.as_str()).collect();
        let mut want: BTreeSet<String> = [
            "/",
            "/usr",
            "/etc",
            "/proc",
            "/dev",
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
            "/dev/tty",
            "/dev/pts",
            "/dev/shm",
            "/tmp",
            "/run",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if Path::new("/opt").is_dir() {
            want.insert("/opt".into());
        }
        // The entries of /proc that describe the host are covered (this kernel's).
        for name in [
            "keys",
            "key-users",
            "kcore",
            "timer_list",
            "timer_stats",
            "sched_debug",
            "latency_stats",
            "interrupts",
            "sysrq-trigger",
            "acpi",
            "asound",
            "scsi",
        ] {
            if Path::new("/proc").join(name).exists() {
                want.insert(format!("/proc/{name}"));
            }
        }
        want.insert(u.home.display().to_string());
        let want: BTreeSet<&str> = want.iter().map(|s| s.as_str()).collect();
        assert_eq!(points, want, "as {}: mount points inside", u.name);
        assert_eq!(
            mounts.len(),
            want.len(),
            "as {}: one mount per point (nothing stacked)",
            u.name
        );
        let root = mounts.iter().find(|m| m.0 == "/").unwrap();
        assert!(
            root.1.starts_with("ro,"),
            "the root tmpfs is read-only: {root:?}"
        );
        assert!(root.2.starts_with("tmpfs"), "{root:?}");
    }
}

#[test]
fn proc_dev_and_tmp_are_private_and_minimal() {
    for u in users() {
        let out = sh(u, &[], "cat /proc/self/mountinfo");
        let mounts = mount_points(&out);
        let opts = |p: &str| {
            mounts
                .iter()
                .find(|m| m.0 == p)
                .unwrap_or_else(|| panic!("no {p}"))
                .clone()
        };
        let proc_ = opts("/proc");
        for o in ["nosuid", "nodev", "noexec"] {
            assert!(
                proc_.1.split(',').any(|x| x == o),
                "/proc lacks {o}: {proc_:?}"
            );
        }
        assert!(proc_.2.starts_with("proc"), "{proc_:?}");
        assert!(
            opts("/dev/pts").2.starts_with("devpts"),
            "a new devpts instance"
        );
        let tmp = opts("/tmp");
        assert!(
            tmp.2.starts_with("tmpfs") && tmp.2.contains("size=1048576k"),
            "size-limited /tmp: {tmp:?}"
        );

        let out = sh(
            u,
            &[],
            "ls -A /dev | tr '\\n' ' '; echo; ls /proc | grep -c '^[0-9]'",
        );
        let mut lines = out.lines();
        let dev: BTreeSet<&str> = lines.next().unwrap().split_whitespace().collect();
        let want: BTreeSet<&str> = [
            "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd",
            "stdin", "stdout", "stderr",
        ]
        .into();
        assert_eq!(dev, want, "as {}: /dev", u.name);
        // PID 1, the shell and ls: no host process is visible.
        let pids: u32 = lines.next().unwrap().parse().unwrap();
        assert!(
            pids <= 4,
            "as {}: {pids} processes visible in /proc",
            u.name
        );

        // The devices work, ptys can be opened, /tmp and /dev/shm are writable, / is not.
        let out = sh(
            u,
            &[],
            "echo x > /dev/null && head -c 4 /dev/zero | wc -c && python3 -c 'import os; os.openpty(); print(\"pty\")' \
             && echo t > /tmp/t && echo s > /dev/shm/s && cat /tmp/t /dev/shm/s; touch /new 2>/dev/null || echo root-ro",
        );
        assert_eq!(out, "4\npty\nt\ns\nroot-ro\n", "as {}", u.name);
    }
}

#[test]
fn read_only_binds_cannot_be_written_remounted_or_unmounted() {
    for u in users() {
        let out = sh(
            u,
            &[],
            "touch /usr/sbx-x 2>/dev/null || echo write-refused; \
             mount -o remount,rw /usr 2>/dev/null || echo remount-refused; \
             umount /usr 2>/dev/null || echo umount-refused; \
             umount -l /etc 2>/dev/null || echo umount-etc-refused; \
             unshare -Urm sh -c 'mount -o remount,rw,bind /usr 2>/dev/null && touch /usr/sbx-x' 2>/dev/null || echo nested-refused; \
             unshare -Urm sh -c 'umount /usr 2>/dev/null && ls /usr | wc -l' 2>/dev/null || echo nested-umount-refused",
        );
        assert_eq!(
            out,
            "write-refused\nremount-refused\numount-refused\numount-etc-refused\nnested-refused\nnested-umount-refused\n",
            "as {}",
            u.name
        );
        assert!(!Path::new("/usr/sbx-x").exists());
    }
}

/// Every submount of a read-only bind is read-only, nosuid and nodev too.
#[test]
fn read_only_reaches_every_submount() {
    if !is_root() {
        skip(
            Lacking::Setup,
            "mounting a submount on the host to bind needs root (run the suite as root)",
        );
        return;
    }
    for u in users() {
        let fx = Fixture::new(u, "submount");
        let sub = fx.path.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "mode=0777",
                "sbx-test",
                sub.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(ok.success());
        let bind = format!("{}:/data", fx.path.display());
        let o = run(
            u,
            &[
                "--ro-bind",
                &bind,
                "--",
                "sh",
                "-c",
                // mode 0777: only the read-only mount can refuse it, and it must say so.
                "touch /data/sub/f 2>&1 | grep -c 'Read-only file system'; grep ' /data/sub ' /proc/self/mountinfo",
            ],
        );
        let _ = std::process::Command::new("umount").arg(&sub).status();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.starts_with("1\n"),
            "as {}: not refused as read-only: {out}",
            u.name
        );
        let opts = out
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(5)
            .unwrap()
            .to_string();
        for o in ["ro", "nosuid", "nodev"] {
            assert!(
                opts.split(',').any(|x| x == o),
                "as {}: submount lacks {o}: {opts}",
                u.name
            );
        }
    }
}

#[test]
fn binds_tmpfs_dirs_and_symlinks_from_the_command_line() {
    for u in users() {
        let fx = Fixture::new(u, "binds");
        fx.file("ro/file", "read-only content", u);
        fx.file("rw/old", "", u);
        fx.file("with:colon/f", "colon", u);
        let ro = format!("{}:/src", fx.path.join("ro").display());
        let rw = format!("{}:/out", fx.path.join("rw").display());
        let colon = format!("{}:/c", fx.path.join("with\\:colon").display());
        let out = sh(
            u,
            &["--ro-bind", &ro, "--bind", &rw, "--ro-bind", &colon, "--tmpfs", "/scratch", "--dir", "/a/b/c", "--symlink", "/src/file:/link"],
            "cat /src/file; echo; cat /c/f; echo; echo new > /out/new; touch /src/x 2>/dev/null || echo ro; \
             touch /scratch/s && echo scratch; test -d /a/b/c && echo dir; cat /link",
        );
        assert_eq!(
            out, "read-only content\ncolon\nro\nscratch\ndir\nread-only content",
            "as {}",
            u.name
        );
        let new = fx.path.join("rw/new");
        assert_eq!(
            std::fs::read_to_string(&new).unwrap(),
            "new\n",
            "writes to --bind reach the host"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&new).unwrap().uid(),
            u.uid,
            "and belong to the user"
        );
        // A bind without DST lands at the same path.
        let p = fx.path.join("ro");
        let out = sh(
            u,
            &["--ro-bind", p.to_str().unwrap()],
            &format!("cat {}/file", p.display()),
        );
        assert_eq!(out, "read-only content");
    }
}

/// Bind sources are opened with the user's own rights: nothing unreadable becomes readable.
#[test]
fn bind_sources_are_opened_with_the_users_rights() {
    for u in users() {
        let o = run(
            u,
            &[
                "--ro-bind",
                "/root:/r",
                "--",
                "sh",
                "-c",
                "ls /r >/dev/null 2>&1 || echo denied",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), "denied\n", "as {}", u.name);
        let o = run(
            u,
            &[
                "--ro-bind",
                "/etc/shadow:/s",
                "--",
                "sh",
                "-c",
                "cat /s >/dev/null 2>&1 || echo denied",
            ],
        );
        assert_eq!(stdout(&o), "denied\n", "as {}: {}", u.name, stderr(&o));
        // A source below a directory the user cannot search is not reachable at all.
        let o = run(u, &["--ro-bind", "/root/.bashrc:/x", "true"]);
        assert_eq!(code(&o), 125, "as {}", u.name);
        assert!(stderr(&o).contains("/root/.bashrc"), "{}", stderr(&o));
    }
}

/// A symlink planted in a bind target's path (here inside a bound directory) never
/// makes setup create, change or mount anything outside the new root.
#[test]
fn planted_symlinks_never_lead_setup_outside() {
    for u in users() {
        let fx = Fixture::new(u, "planted");
        let outside = Fixture::new(u, "outside");
        std::fs::create_dir_all(fx.path.join("src")).unwrap();
        fx.chown(&fx.path.join("src"), u);
        let evil = fx.path.join("evil");
        std::fs::create_dir(&evil).unwrap();
        fx.chown(&evil, u);
        let abs = evil.join("abs");
        let rel = evil.join("rel");
        std::os::unix::fs::symlink(&outside.path, &abs).unwrap();
        std::os::unix::fs::symlink(
            format!("../../../../../../../..{}", outside.path.display()),
            &rel,
        )
        .unwrap();
        fx.chown(&abs, u);
        fx.chown(&rel, u);
        let bind = format!("{}:/x", evil.display());
        let src = format!("{}:/x/abs/mounted", fx.path.join("src").display());
        let src_rel = format!("{}:/x/rel/mounted", fx.path.join("src").display());
        let attempts: Vec<Vec<&str>> = vec![
            vec!["--bind", &bind, "--dir", "/x/abs/made"],
            vec!["--bind", &bind, "--dir", "/x/rel/made"],
            vec!["--bind", &bind, "--tmpfs", "/x/abs"],
            vec!["--bind", &bind, "--tmpfs", "/x/rel/t"],
            vec!["--bind", &bind, "--ro-bind", &src],
            vec!["--bind", &bind, "--ro-bind", &src_rel],
            vec!["--bind", &bind, "--symlink", "/etc:/x/abs/link"],
            vec!["--bind", &bind, "--symlink", "/etc:/x/rel/link"],
        ];
        let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for mut a in attempts {
            a.extend(["--", "true"]);
            let o = run(u, &a);
            let left: Vec<_> = std::fs::read_dir(&outside.path)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(
                left.is_empty(),
                "as {}: {a:?} created {left:?} outside the root",
                u.name
            );
            let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            assert_eq!(
                before, after,
                "as {}: {a:?} changed the host mount table",
                u.name
            );
            // Whatever it did, it failed closed or stayed inside.
            assert!(
                code(&o) == 0 || code(&o) == 125,
                "as {}: {a:?}: {}",
                u.name,
                stderr(&o)
            );
        }
    }
}

#[test]
fn bind_sources_under_host_tmp_are_taken_before_tmp_is_covered() {
    for u in users() {
        let fx = Fixture::new(u, "hosttmp");
        fx.file("f", "under host tmp", u);
        assert!(fx.path.starts_with("/tmp"));
        let bind = format!("{}:/data", fx.path.display());
        assert_eq!(
            sh(u, &["--ro-bind", &bind], "cat /data/f"),
            "under host tmp"
        );
        // ...and over the sandbox's own /tmp as well.
        let bind = format!("{}", fx.path.display());
        assert_eq!(
            sh(
                u,
                &["--ro-bind", &bind],
                &format!("cat {}/f", fx.path.display())
            ),
            "under host tmp"
        );
    }
}

/// The command's process walks no path while the old root is still stacked on the
/// new one after pivot_root: a `..` at the root steps onto the mount on it, the host's
/// tree. A cwd reached through a `..` symlink must land on the sandbox's own root,
/// every time (entered before the detach, it did in about one launch in six).
#[test]
fn cwd_through_dotdot_never_reaches_the_old_root() {
    for u in users() {
        for _ in 0..50 {
            let o = run(
                u,
                &[
                    "-q",
                    "--profile",
                    "minimal",
                    "--symlink",
                    "..:/up",
                    "--cwd",
                    "/up",
                    "--",
                    "sh",
                    "-c",
                    "test . -ef / && echo root",
                ],
            );
            assert_eq!(
                stdout(&o),
                "root\n",
                "as {}: the cwd is not the sandbox's root: {}",
                u.name,
                stderr(&o)
            );
        }
    }
}

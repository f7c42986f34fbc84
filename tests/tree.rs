//! The tree the sandbox shows is the final tree of its mounts, as bubblewrap builds
//! it: a later mount over an earlier one wins and what it covers is gone. A property
//! test: random sequences of binds, tmpfs, dirs and symlinks over a small set of
//! nested, repeated and covering destinations, each run three ways:
//! `sbx --dry-run`, `sbx`, and bubblewrap (the independent oracle). They must agree:
//! a plan `--dry-run` accepts launches, one it refuses fails to launch with the same
//! message, and the tree inside is bubblewrap's.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// A small deterministic generator (xorshift64*): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick(&mut self, v: &[&'static str]) -> &'static str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

const DSTS: [&str; 5] = ["/t", "/t/a", "/t/a/b", "/t/c", "/t/a/b/c"];
/// Relative targets only: bubblewrap resolves an absolute symlink in the new root
/// against the host's root while it sets up (the string-path behaviour sbx avoids
/// with RESOLVE_IN_ROOT), so it cannot be the oracle for those.
const LINK_TARGETS: [&str; 4] = ["a", "b", "missing", "../c"];

#[derive(Debug, Clone)]
enum Op {
    Bind(&'static str, bool, &'static str),
    Tmpfs(&'static str),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
}

/// Sources: `s1` holds a directory `b` (with `c` in it), a file `f1` and a link `l`
/// to `b`; `s2` holds a *file* `b` (conflicts with `/t/a/b` below it); `f` is a file.
fn sources(u: &User, tag: &str) -> Fixture {
    let fx = Fixture::new(u, tag);
    fx.file("s1/b/c/in-c", "c", u);
    fx.file("s1/f1", "1", u);
    std::os::unix::fs::symlink("b", fx.path.join("s1/l")).unwrap();
    fx.chown(&fx.path.join("s1/l"), u);
    fx.file("s2/b", "file", u);
    fx.file("s2/f2", "2", u);
    fx.file("f", "plain", u);
    for d in ["s1", "s1/b", "s1/b/c", "s2"] {
        fx.chown(&fx.path.join(d), u);
        std::fs::set_permissions(fx.path.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fx
}

/// The ops as a profile (after `minimal`), with `masks` last, as profiles put them.
fn profile(ops: &[Op], masks: &[&str], root: &Path) -> String {
    let mut t = String::from("version = 1\ninclude = [\"minimal\"]\n");
    if !masks.is_empty() {
        let list: Vec<String> = masks.iter().map(|m| format!("{m:?}")).collect();
        t += &format!("mask = [{}]\n", list.join(", "));
    }
    for op in ops {
        t += "[[mount]]\n";
        t += &match op {
            Op::Bind(src, rw, dst) => format!(
                "type = \"{}\"\nsrc = {:?}\ndst = {dst:?}\n",
                if *rw { "bind" } else { "ro-bind" },
                root.join(src).display().to_string()
            ),
            Op::Tmpfs(d) => format!("type = \"tmpfs\"\ndst = {d:?}\n"),
            Op::Dir(d) => format!("type = \"dir\"\ndst = {d:?}\n"),
            Op::Symlink(t, l) => format!("type = \"symlink\"\ntarget = {t:?}\ndst = {l:?}\n"),
        };
    }
    t
}

/// bubblewrap's listing with `masks` applied as sbx applies them (what is there is
/// replaced by an empty directory or file); None where a mask meets a symlink
/// (the oracle would need to resolve it).
fn masked(listing: &str, masks: &[&str], cwd: Option<&str>) -> Option<String> {
    let mut lines: Vec<String> = listing.lines().map(str::to_string).collect();
    for m in masks {
        // A working directory under a mask would not exist in sbx's tree.
        if cwd.is_some_and(|c| Path::new(c).starts_with(m) && c != *m) {
            return None;
        }
        let kind = |p: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{p} ")).map(|r| r.chars().next()))
                .flatten()
        };
        let mut anc = Path::new(m).to_path_buf();
        while anc.pop() {
            if kind(&anc.display().to_string()) == Some('l') {
                return None;
            }
        }
        match kind(m) {
            Some('l') => return None,
            Some('d') => lines.retain(|l| !l.starts_with(&format!("{m}/"))),
            _ => {}
        }
    }
    Some(lines.join("\n") + "\n")
}

fn args(ops: &[Op], root: &Path, sbx: bool) -> Vec<String> {
    let mut v = Vec::new();
    for op in ops {
        match op {
            Op::Bind(src, rw, dst) => {
                let src = root.join(src).display().to_string();
                let flag = if *rw { "--bind" } else { "--ro-bind" };
                if sbx {
                    v.extend([flag.to_string(), format!("{src}:{dst}")]);
                } else {
                    v.extend([flag.to_string(), src, dst.to_string()]);
                }
            }
            Op::Tmpfs(d) => v.extend(["--tmpfs".into(), d.to_string()]),
            Op::Dir(d) => v.extend(["--dir".into(), d.to_string()]),
            Op::Symlink(t, l) => {
                if sbx {
                    v.extend(["--symlink".into(), format!("{t}:{l}")]);
                } else {
                    v.extend(["--symlink".into(), t.to_string(), l.to_string()]);
                }
            }
        }
    }
    v
}

const LIST: &str =
    "pwd -P; if [ -e /t ] || [ -L /t ]; then find /t -printf '%p %y %l\\n' | sort; fi; echo end";

fn bwrap(u: &User, ops: &[Op], root: &Path, cwd: Option<&str>) -> (i32, String) {
    let mut c = as_user(u, "bwrap");
    c.args([
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ])
    .args(args(ops, root, false))
    .args(cwd.iter().flat_map(|c| ["--chdir", c]))
    .args(["sh", "-c", LIST]);
    let o = output(c);
    (code(&o), stdout(&o))
}

#[test]
fn mounts_make_bubblewraps_tree_and_dry_run_agrees_with_the_launch() {
    if Command::new("bwrap").arg("--version").output().is_err() {
        panic!("bubblewrap is the oracle here: tests/setup.sh installs it");
    }
    let mut rng = Rng(0x5b5_1234_abcd);
    let mut disagreements = Vec::new();
    let cases = 240;
    for n in 0..cases {
        let len = 1 + (rng.next() % 5) as usize;
        let ops: Vec<Op> = (0..len)
            .map(|_| match rng.next() % 6 {
                0 => Op::Bind(rng.pick(&["s1", "s2", "f"]), false, rng.pick(&DSTS)),
                1 => Op::Bind(rng.pick(&["s1", "s2"]), true, rng.pick(&DSTS)),
                2 => Op::Tmpfs(rng.pick(&DSTS)),
                3 => Op::Dir(rng.pick(&DSTS)),
                _ => Op::Symlink(rng.pick(&LINK_TARGETS), rng.pick(&DSTS)),
            })
            .collect();
        let u = &users()[n % users().len()];
        // Half the cases as a profile with masks, half on the command line; some
        // with a working directory among the destinations.
        let as_profile = rng.next() % 2 == 0;
        let masks: Vec<&str> = match as_profile {
            true => (0..rng.next() % 3).map(|_| rng.pick(&DSTS)).collect(),
            false => Vec::new(),
        };
        let cwd = (rng.next() % 3 == 0).then(|| rng.pick(&DSTS));
        // The dry run and the launch see the same sources (a dry run makes nothing);
        // bubblewrap gets fresh ones (a writable bind may get mount points made in it).
        let fx = sources(u, "tree");
        let pdir = Fixture::new(u, "tree-profile");
        let run_sbx = |dry: bool| {
            let mut a = vec!["-q".to_string(), "--profile".into()];
            if as_profile {
                // Beside the sources, not above them: the trust rule would refuse a
                // writable bind below the profile's own directory.
                let file = pdir.path.join("case.toml");
                std::fs::write(&file, profile(&ops, &masks, &fx.path)).unwrap();
                a.push(file.display().to_string());
            } else {
                a.push("minimal".into());
            }
            if dry {
                a.push("--dry-run".into());
            }
            if !as_profile {
                a.extend(args(&ops, &fx.path, true));
            }
            if let Some(c) = cwd {
                a.extend(["--cwd".into(), c.to_string()]);
            }
            a.extend(["--".into(), "sh".into(), "-c".into(), LIST.into()]);
            let o = run(u, &a);
            (code(&o), stdout(&o), stderr(&o))
        };
        let (dry, _, dry_err) = run_sbx(true);
        let (launch, sbx_tree, launch_err) = run_sbx(false);
        drop(fx);
        let fx = sources(u, "tree");
        let (b, bwrap_tree) = bwrap(u, &ops, &fx.path, cwd);
        let bwrap_tree = masked(&bwrap_tree, &masks, cwd);
        drop(fx);
        // The same symlink twice is fine for sbx (as for bubblewrap since 0.10);
        // Debian 12's bubblewrap 0.8 refuses it, so it is no oracle for that.
        let repeated_link = ops.iter().enumerate().any(|(i, a)| {
            ops[..i].iter().any(|b| match (a, b) {
                (Op::Symlink(t1, l1), Op::Symlink(t2, l2)) => t1 == t2 && l1 == l2,
                _ => false,
            })
        });
        // A mount whose destination passes through an earlier symlink: bubblewrap
        // finds its new mount again by path in mountinfo and fails where the link led
        // elsewhere; sbx mounts on the descriptor it resolved. No oracle there.
        let through_link = ops.iter().enumerate().any(|(i, a)| {
            let dst = match a {
                Op::Bind(_, _, d) | Op::Tmpfs(d) => Path::new(d),
                _ => return false,
            };
            ops[..i]
                .iter()
                .any(|b| matches!(b, Op::Symlink(_, l) if dst.starts_with(l)))
        });
        // A writable source bound inside itself (s1 at /t and again at /t/a/b, which
        // then lies in s1 on the host): find(1) meets a loop in the tree, and prints
        // what it skips differently run to run. No oracle there.
        let nested_self = ops.iter().enumerate().any(|(i, a)| {
            ops[..i].iter().any(|b| match (a, b) {
                (Op::Bind(s1, _, d1), Op::Bind(s2, _, d2)) => {
                    s1 == s2
                        && (Path::new(d1).starts_with(d2) || Path::new(d2).starts_with(d1))
                        && d1 != d2
                }
                _ => false,
            })
        });
        let oracle = bwrap_tree.is_some() && !repeated_link && !through_link && !nested_self;
        let agree = (dry == 0) == (launch == 0)
            && (dry == 0 || dry_err == launch_err)
            && (!oracle || (b == 0) == (launch == 0))
            && (!oracle || launch != 0 || bwrap_tree.as_deref() == Some(sbx_tree.as_str()));
        if !agree {
            disagreements.push(format!(
                "{ops:?} masks {masks:?} cwd {cwd:?} profile {as_profile}\n  dry-run {dry} {dry_err:?}\n  launch {launch} {launch_err:?}\n  sbx tree {sbx_tree:?}\n  bwrap {b} {bwrap_tree:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} cases disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

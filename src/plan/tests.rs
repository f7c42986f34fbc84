//! The plan is a pure function of the command line and the host facts: tested here
//! without privileges against a fake host.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::host::Entry;
use crate::userns::{Mapping, SubidRange};
use crate::{cli, landlock};

#[derive(Default)]
struct FakeFs {
    entries: BTreeMap<PathBuf, Entry>,
    /// canonicalize results: path -> real path (absent: ENOENT).
    real: BTreeMap<PathBuf, PathBuf>,
    helpers: bool,
    /// Owners of entries (absent: root).
    owners: BTreeMap<PathBuf, u32>,
    sockets: BTreeMap<PathBuf, Vec<OsString>>,
    /// Contents of small files (read_small).
    files: BTreeMap<PathBuf, String>,
    /// newuidmap/newgidmap present but neither setuid nor with file capabilities.
    unprivileged_helpers: bool,
    /// /proc/self/mountinfo.
    mountinfo: String,
    /// Extended attributes: (path, name) -> value.
    xattrs: BTreeMap<(PathBuf, String), Vec<u8>>,
}

impl HostFs for FakeFs {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        match (self.real.get(p), self.entries.get(p)) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(Entry::Dir | Entry::File)) => Ok(p.to_path_buf()),
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
    fn entry(&self, p: &Path) -> Entry {
        if let Some(e) = self.entries.get(p) {
            return e.clone();
        }
        // A path canonicalize knows, or the parent of one that exists, is a directory.
        let known = |k: &PathBuf| k.starts_with(p) && k != p;
        if self.real.get(p).is_some_and(|r| r == p)
            || self.entries.keys().any(known)
            || self.real.keys().any(known)
        {
            Entry::Dir
        } else {
            Entry::Missing
        }
    }
    fn is_executable_file(&self, p: &Path) -> bool {
        self.helpers && p.starts_with("/usr/bin")
    }
    fn is_privileged_helper(&self, p: &Path) -> bool {
        self.helpers && !self.unprivileged_helpers && p.starts_with("/usr/bin")
    }
    fn owner(&self, p: &Path) -> Option<u32> {
        // Root's unless a test says otherwise.
        Some(self.owners.get(p).copied().unwrap_or(0))
    }
    fn sockets_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        self.sockets.get(p).cloned().unwrap_or_default()
    }
    fn names_in(&self, p: &Path) -> Vec<std::ffi::OsString> {
        self.entries
            .keys()
            .filter(|k| k.parent() == Some(p))
            .filter_map(|k| k.file_name().map(|n| n.to_os_string()))
            .collect()
    }
    fn read_file(&self, p: &Path, _: u64) -> Option<Vec<u8>> {
        self.files.get(p).map(|t| t.as_bytes().to_vec())
    }
    fn mountinfo(&self) -> String {
        self.mountinfo.clone()
    }
    fn xattr(&self, p: &Path, name: &str) -> Option<Vec<u8>> {
        self.xattrs
            .get(&(p.to_path_buf(), name.to_string()))
            .cloned()
    }
}

fn merged_usr() -> FakeFs {
    let mut fs = FakeFs {
        helpers: true,
        ..Default::default()
    };
    for (l, t) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ] {
        fs.entries.insert(l.into(), Entry::Symlink(t.into()));
    }
    for d in [
        "/usr",
        "/etc",
        "/opt",
        "/home/alice",
        "/home/alice/.ssh",
        "/home/alice/.cargo/registry",
        "/srv/proj",
    ] {
        fs.entries.insert(d.into(), Entry::Dir);
    }
    fs.entries.insert("/home/alice/.netrc".into(), Entry::File);
    fs.entries.insert("/etc/resolv.conf".into(), Entry::File);
    fs.entries.insert("/etc/hosts".into(), Entry::File);
    for (p, r) in [
        ("/srv/proj", "/srv/proj"),
        ("/home/alice/link", "/srv/proj"),
        ("/srv/a:b", "/srv/a:b"),
    ] {
        fs.real.insert(p.into(), r.into());
    }
    fs
}

fn host(subids: bool) -> Host {
    let sub = vec![SubidRange {
        start: 100000,
        count: 65536,
    }];
    Host {
        uid: 1000,
        gid: 1000,
        user: "alice".into(),
        home: "/home/alice".into(),
        home_real: "/home/alice".into(),
        cwd: Some("/srv/proj".into()),
        cwd_via: None,
        env: [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/alice"),
            ("USER", "alice"),
            ("TERM", "xterm"),
            ("LC_ALL", "C"),
            ("SSH_AUTH_SOCK", "/run/user/1000/ssh"),
            ("GITHUB_TOKEN", "ghp_secret"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"),
        ]
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect(),
        subuid: if subids { sub.clone() } else { vec![] },
        subgid: if subids { sub } else { vec![] },
        subid_overlaps: vec![],
        landlock_abi: Some(7),
        tun_usable: true,
        pid: 4242,
        no_new_privs: false,
        tty: None,
        uid_map: "0 0 4294967295\n".into(),
        gid_map: "0 0 4294967295\n".into(),
        rlimit_hard: vec![("nofile".into(), 4096), ("nproc".into(), 2000)],
        cgroup_self: std::cell::OnceCell::from((
            "0::/user.slice/user-1000.slice/session-2.scope\n".to_string(),
            777,
        )),
    }
}

fn plan(args: &[&str], host: &Host, fs: &FakeFs) -> Result<Plan> {
    let mut argv = vec!["sbx"];
    argv.extend(args);
    Plan::build_with(
        &cli::parse(argv).unwrap(),
        host,
        fs,
        &Locations::none(),
        &Vars::from_host(host),
    )
}

/// The resolved plan of every shipped profile, golden (`src/plan/golden/NAME.json`):
/// any change to what a sandbox gets shows up in review. `SBX_BLESS=1 cargo test`
/// rewrites the files after a deliberate change.
#[test]
fn shipped_profiles_golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan/golden");
    let bless = std::env::var_os("SBX_BLESS").is_some();
    for (name, _) in crate::profile::BUILTIN {
        if [
            "system",
            "home-masks",
            "empty-home",
            "fonts",
            "x11",
            "wayland",
            "pulseaudio",
            "pipewire",
            "dri",
            "dbus",
            "nesting",
        ]
        .contains(name)
        {
            continue; // abstractions: covered through the profiles that include them
        }
        let p = plan(
            &["--profile", name, "--", "sh", "-c", "id"],
            &host(true),
            &merged_usr(),
        )
        .unwrap_or_else(|e| panic!("profile {name}: {e}"));
        // Where records go depends on this machine's /run/user and /tmp: not golden.
        let mut p = p;
        p.records = Some("/run/user/1000/sbx".into());
        let got = p.to_json() + "\n";
        let file = dir.join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(
            got,
            want,
            "profile {name} differs from {} (SBX_BLESS=1 to accept)",
            file.display()
        );
    }
}

#[test]
fn no_subids_means_a_single_announced_map() {
    let p = plan(&["true"], &host(false), &merged_usr()).unwrap();
    assert_eq!(p.ids.mapping, Mapping::Single);
    assert_eq!(p.notices.len(), 1);
    let mut fs = merged_usr();
    fs.helpers = false;
    let p = plan(&["true"], &host(true), &fs).unwrap();
    assert_eq!(p.ids.mapping, Mapping::Single, "no helpers: single id");
    assert!(p.notices[0].contains("uidmap"), "{:?}", p.notices);
}

#[test]
fn cli_mounts_follow_the_default_layout_in_order() {
    let p = plan(
        &[
            "--tmpfs",
            "/scratch",
            "--ro-bind",
            "/srv/proj:/src",
            "--bind",
            "/home/alice/link",
            "--dir",
            "/a/b",
            "true",
        ],
        &host(true),
        &merged_usr(),
    )
    .unwrap();
    let tail: Vec<&Mount> = p.mounts.iter().rev().take(4).rev().collect();
    assert_eq!(
        tail[0].op,
        MountOp::Tmpfs {
            dst: "/scratch".into(),
            size: TMPFS_SIZE,
            mode: 0o755
        }
    );
    assert_eq!(
        tail[1].op,
        MountOp::Bind {
            src: "/srv/proj".into(),
            dst: "/src".into(),
            access: Access::ReadOnly
        }
    );
    // Without DST, the path as given (not the resolved one) is the destination.
    assert_eq!(
        tail[2].op,
        MountOp::Bind {
            src: "/srv/proj".into(),
            dst: "/home/alice/link".into(),
            access: Access::ReadWrite
        }
    );
    assert_eq!(tail[2].origin, "--bind /home/alice/link");
    assert_eq!(
        tail[3].op,
        MountOp::Dir {
            dst: "/a/b".into(),
            mode: 0o755
        }
    );
}

#[test]
fn relative_sources_resolve_against_the_cwd_for_their_destination() {
    let mut fs = merged_usr();
    fs.real.insert("sub".into(), "/srv/proj/sub".into());
    fs.entries.insert("/srv/proj/sub".into(), Entry::Dir);
    let p = plan(&["--ro-bind", "sub", "true"], &host(true), &fs).unwrap();
    assert_eq!(
        p.mounts.last().unwrap().op.dst(),
        Path::new("/srv/proj/sub")
    );
}

#[test]
fn colon_and_backslash_escapes() {
    assert_eq!(split_pair("a:b".as_ref()), ("a".into(), Some("b".into())));
    assert_eq!(split_pair("a\\:b".as_ref()), ("a:b".into(), None));
    assert_eq!(
        split_pair("a\\:b:/c\\:d".as_ref()),
        ("a:b".into(), Some("/c:d".into()))
    );
    assert_eq!(
        split_pair("a\\\\:b".as_ref()),
        ("a\\".into(), Some("b".into()))
    );
    assert_eq!(
        split_pair("a\\x".as_ref()),
        ("a\\x".into(), None),
        "other escapes stay literal"
    );
    assert_eq!(
        split_pair("a:b:c".as_ref()),
        ("a".into(), Some("b:c".into()))
    );
    let raw = OsString::from_vec(vec![b'/', 0xff, b':', b'/', b'x']);
    assert_eq!(
        split_pair(&raw).0,
        OsString::from_vec(vec![b'/', 0xff]),
        "non-UTF-8 bytes pass"
    );
    let p = plan(
        &["--ro-bind", "/srv/a\\:b:/in", "true"],
        &host(true),
        &merged_usr(),
    )
    .unwrap();
    assert_eq!(
        p.mounts.last().unwrap().op,
        MountOp::Bind {
            src: "/srv/a:b".into(),
            dst: "/in".into(),
            access: Access::ReadOnly
        }
    );
}

#[test]
fn bad_destinations_and_sources_are_refused_with_their_option() {
    let h = host(true);
    let fs = merged_usr();
    for (args, needle) in [
        (vec!["--ro-bind", "/missing:/x"], "/missing"),
        (vec!["--ro-bind", "/srv/proj:rel"], "not an absolute path"),
        (vec!["--tmpfs", "/a/../../etc"], ".."),
        (vec!["--dir", "relative"], "not an absolute path"),
        (vec!["--symlink", "no-link-part"], "TARGET:LINK"),
        (vec!["--tmpfs", "/"], "sandbox root"),
        (vec!["--bind", ":/x"], "empty source"),
        (
            vec![
                "--hostname",
                "a-very-long-hostname-that-goes-on-and-on-and-on-beyond-sixty-four-bytes",
            ],
            "--hostname",
        ),
        (vec!["--cap-add", "BOGUS"], "BOGUS"),
        (vec!["--setenv", "=x"], "--setenv"),
        (vec!["--unsetenv", "A=B"], "--unsetenv"),
        (vec!["--cwd", "rel"], "--cwd"),
    ] {
        let mut a = args.clone();
        a.push("true");
        let e = plan(&a, &h, &fs).unwrap_err();
        assert!(e.to_string().contains(needle), "{args:?}: {e}");
        assert_eq!(e.code, crate::error::EXIT_SETUP);
    }
}

#[test]
fn destinations_are_normalised() {
    let p = plan(
        &["--dir", "//a/./b//c/", "true"],
        &host(true),
        &merged_usr(),
    )
    .unwrap();
    assert_eq!(p.mounts.last().unwrap().op.dst(), Path::new("/a/b/c"));
}

#[test]
fn environment_is_an_allow_list_with_cli_changes_in_order() {
    let p = plan(
        &[
            "--keep-env",
            "GITHUB_TOKEN",
            "--setenv",
            "A=1",
            "--unsetenv",
            "A",
            "--setenv",
            "B=x=y",
            "--unsetenv",
            "TERM",
            "true",
        ],
        &host(true),
        &merged_usr(),
    )
    .unwrap();
    let keys: Vec<String> = p
        .env
        .iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        keys,
        ["PATH", "HOME", "USER", "LC_ALL", "GITHUB_TOKEN", "B"]
    );
    assert_eq!(p.env.last().unwrap().1, "x=y");
    let p = plan(&["true"], &host(true), &merged_usr()).unwrap();
    assert!(!p.env.iter().any(|(k, _)| k == "SSH_AUTH_SOCK"
        || k == "DBUS_SESSION_BUS_ADDRESS"
        || k == "GITHUB_TOKEN"));
}

#[test]
fn missing_home_user_and_path_are_filled_in() {
    let mut h = host(true);
    h.env.clear();
    let p = plan(&["true"], &h, &merged_usr()).unwrap();
    let get = |k: &str| {
        p.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    assert_eq!(get("HOME").as_deref(), Some("/home/alice"));
    assert_eq!(get("USER").as_deref(), Some("alice"));
    assert_eq!(get("PATH").as_deref(), Some(DEFAULT_PATH));
}

#[test]
fn net_host_drops_the_network_namespace() {
    let p = plan(&["--net", "host", "true"], &host(true), &merged_usr()).unwrap();
    assert!(!p.namespaces.contains(&Namespace::Net));
    assert_eq!(p.namespaces[0], Namespace::User);
}

#[test]
fn cwd_option_is_required_and_exclusive() {
    let p = plan(&["--cwd", "/etc", "true"], &host(true), &merged_usr()).unwrap();
    assert_eq!(p.cwd, [PathBuf::from("/etc")]);
    assert!(p.cwd_required);
}

#[test]
fn cap_add_sys_admin_is_refused() {
    let e = plan(
        &["--cap-add", "sys_admin", "true"],
        &host(true),
        &merged_usr(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("CAP_SYS_ADMIN is refused"), "{e}");
}

#[test]
fn cap_add_is_announced_once_per_capability() {
    let p = plan(
        &["--cap-add", "NET_RAW", "--cap-add", "cap_net_raw", "true"],
        &host(true),
        &merged_usr(),
    )
    .unwrap();
    assert_eq!(p.caps, [13]);
    assert_eq!(
        p.notices
            .iter()
            .filter(|n| n.contains("CAP_NET_RAW"))
            .count(),
        1
    );
}

#[test]
fn non_merged_usr_binds_the_real_directories() {
    let mut fs = merged_usr();
    fs.entries.insert("/bin".into(), Entry::Dir);
    fs.entries.remove(Path::new("/opt"));
    let p = plan(&["true"], &host(true), &fs).unwrap();
    assert!(p.mounts.iter().any(|m| m.op
        == MountOp::Bind {
            src: "/bin".into(),
            dst: "/bin".into(),
            access: Access::ReadOnly
        }));
    assert!(!p.mounts.iter().any(|m| m.op.dst() == Path::new("/opt")));
}

/// Every profile-level error names file:line:column and runs nothing.
#[test]
fn profile_entry_errors_are_collected_with_locations() {
    let text = "version = 1\nmask = [\"relative/path\"]\n\
        [[mount]]\ntype = \"tmpfs\"\ndst = \"/a\\u0000b\"\n\
        [[mount]]\ntype = \"ro-bind\"\nsrc = \"/x\\u0000y\"\n\
        [[mount]]\ntype = \"tmpfs\"\ndst = \"/t\"\nsize = \"2T\"\n\
        [[mount]]\ntype = \"dir\"\ndst = \"${SHELL}\"\n\
        [[mount]]\ntype = \"file\"\ndst = \"/f\"\nmode = \"0999\"\n\
        [[mount]]\ntype = \"bind\"\nsrc = \"/x\"\ntarget = \"/y\"\n";
    let r = crate::profile::resolve_text(text).unwrap();
    let h = host(true);
    let errs = match compile::compile(&r, &h, &crate::host::ImaginaryFs, &Vars::from_host(&h)) {
        Ok(_) => panic!("must fail"),
        Err(e) => e,
    };
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let want = [
        ("<text>:3:1", "NUL"),
        ("<text>:6:1", "NUL byte"),
        ("<text>:9:1", "out of range"),
        ("<text>:13:1", "unknown variable ${SHELL}"),
        ("<text>:16:1", "octal mode"),
        ("<text>:20:1", "`target` does not apply"),
    ];
    for (loc, what) in want {
        assert!(
            msgs.iter().any(|m| m.starts_with(loc) && m.contains(what)),
            "{loc} {what}: {msgs:#?}"
        );
    }
    assert!(
        msgs.iter().any(|m| m.contains("not an absolute path")),
        "the mask: {msgs:#?}"
    );
    assert_eq!(msgs.len(), 7, "{msgs:#?}");
}

/// Errors only the whole plan can find still name the profile line.
#[test]
fn plan_level_profile_errors_name_the_line() {
    let dir = std::env::temp_dir().join(format!("sbx-plan-loc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let cases = [
        (
            write(
                "h.toml",
                "version = 1\ninclude = [\"minimal\"]\nhostname = \"\"\n",
            ),
            "h.toml:3:12: hostname",
        ),
        (
            write(
                "r.toml",
                "version = 1\ninclude = [\"minimal\"]\n[rlimits]\nfsize = \"lots\"\n",
            ),
            "r.toml:3:1: limits",
        ),
        (
            write(
                "i.toml",
                "version = 1\ninclude = [\"minimal\"]\nids = \"subordinate\"\n",
            ),
            "i.toml:3:7: ids",
        ),
    ];
    for (path, want) in cases {
        let e = plan(&["--profile", &path, "true"], &host(false), &merged_usr()).unwrap_err();
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn landlock_rules_follow_the_mounts() {
    let mut fs = merged_usr();
    for d in ["/srv/out", "/dev/dri"] {
        fs.entries.insert(d.into(), Entry::Dir);
        fs.real.insert(d.into(), d.into());
    }
    let p = plan(
        &[
            "--ro-bind",
            "/srv/proj:/src",
            "--bind",
            "/srv/out:/out",
            "--dev-bind",
            "/dev/dri",
            "--symlink",
            "a:/b",
            "true",
        ],
        &host(false),
        &fs,
    )
    .unwrap();
    let access = |path: &str| {
        p.landlock
            .fs_rules
            .iter()
            .find(|r| r.path == Path::new(path))
            .map(|r| r.access)
    };
    assert_eq!(access("/"), Some(landlock::READ_DIR));
    assert_eq!(access("/usr"), Some(landlock::READ));
    assert_eq!(access("/src"), Some(landlock::READ));
    assert_eq!(access("/out"), Some(landlock::WRITE));
    assert_eq!(access("/dev/dri"), Some(landlock::DEVICE));
    assert_eq!(access("/tmp"), Some(landlock::WRITE));
    assert_eq!(access("/dev/shm"), Some(landlock::WRITE));
    assert_eq!(access("/b"), None, "a symlink gets no rule of its own");
    assert!(p.landlock.scopes && p.landlock.missing.is_empty() && p.warnings.is_empty());
}

#[test]
fn a_missing_landlock_is_a_warning_or_with_require_an_error() {
    let fs = merged_usr();
    let mut h = host(false);
    h.landlock_abi = Some(4);
    let p = plan(&["true"], &h, &fs).unwrap();
    assert!(!p.landlock.scopes);
    assert!(
        p.warnings.iter().any(|w| w.contains("ABI 4 has no scopes")),
        "{:?}",
        p.warnings
    );
    let e = plan(&["--require", "landlock", "true"], &h, &fs).unwrap_err();
    assert!(e.to_string().contains("--require landlock"), "{e}");
    assert_eq!(e.code, 125);
    h.landlock_abi = None;
    let p = plan(&["true"], &h, &fs).unwrap();
    assert!(!p.landlock.is_applied());
    assert!(
        p.enforcement[1].contains("not enforced"),
        "{:?}",
        p.enforcement
    );
}

#[test]
fn require_refuses_profiles_that_turn_a_layer_off() {
    let fs = merged_usr();
    for (key, layer) in [("landlock", "landlock"), ("seccomp", "seccomp")] {
        let text = format!("version = 1\ninclude = [\"builtin:minimal\"]\n{key} = \"off\"\n");
        let dir = std::env::temp_dir().join(format!("sbx-unit-{}-{key}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.toml");
        std::fs::write(&file, text).unwrap();
        let f = file.to_str().unwrap();
        let p = plan(&["--profile", f, "true"], &host(false), &fs).unwrap();
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains(&format!("{key} = \"off\""))));
        let e = plan(
            &["--require", layer, "--profile", f, "true"],
            &host(false),
            &fs,
        )
        .unwrap_err();
        assert!(e.to_string().contains("p.toml:3:"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn xauthority_keeps_one_display_for_any_host() {
    let entry = |family: u16, addr: &[u8], num: &[u8], cookie: &[u8]| {
        let mut v = family.to_be_bytes().to_vec();
        for f in [addr, num, b"MIT-MAGIC-COOKIE-1", cookie] {
            v.extend_from_slice(&(f.len() as u16).to_be_bytes());
            v.extend_from_slice(f);
        }
        v
    };
    let mut file = entry(256, b"myhost", b"0", &[1; 16]);
    file.extend(entry(256, b"myhost", b"7", &[7; 16]));
    file.extend(entry(0, b"\x7f\0\0\x01", b"0", &[2; 16]));
    let out = super::compile::xauth_for_display(&file, "7").unwrap();
    assert_eq!(out, entry(0xFFFF, b"", b"7", &[7; 16]));
    assert_eq!(
        super::compile::xauth_for_display(&file, "3").unwrap(),
        Vec::<u8>::new()
    );
    assert!(super::compile::xauth_for_display(&file[..10], "0").is_err());
}

/// A fake host where `link` is a symlink to `target`, owned by `owner`.
fn with_link(mut fs: FakeFs, link: &str, target: &str, owner: u32) -> FakeFs {
    fs.entries
        .insert(link.into(), Entry::Symlink(target.into()));
    fs.owners.insert(link.into(), owner);
    fs
}

fn binds_from(p: &Plan, src: &str) -> usize {
    p.mounts
        .iter()
        .filter(|m| matches!(&m.op, MountOp::Bind { src: s, .. } if s.starts_with(src)))
        .count()
}

#[test]
fn profile_paths_follow_only_roots_symlinks() {
    let mut base = merged_usr();
    for d in [
        "/home/alice/.ssh",
        "/home/alice/.config",
        "/data/cache",
        "/var/home/alice",
    ] {
        base.entries.insert(d.into(), Entry::Dir);
    }
    // A planted link where an optional grant is (browser's ~/.mozilla, dev's cache):
    // the grant is dropped with a warning naming the link, its target and the fix.
    for (profile, link, target) in [
        ("browser", "/home/alice/.mozilla", "/home/alice/.ssh"),
        ("browser", "/home/alice/.mozilla", "../alice/.ssh"),
        ("dev", "/home/alice/.cache", "/home/alice/.ssh"),
        ("dev", "/home/alice/.cargo", "/home/alice/.config"),
    ] {
        let fs = with_link(merged_usr(), link, target, 1000);
        let mut fs = fs;
        fs.entries.insert("/home/alice/.ssh".into(), Entry::Dir);
        fs.entries.insert("/home/alice/.config".into(), Entry::Dir);
        let p = plan(&["--profile", profile, "true"], &host(true), &fs).unwrap();
        assert_eq!(binds_from(&p, "/home/alice/.ssh"), 0, "{profile} {link}");
        assert!(
            !p.mounts.iter().any(|m| matches!(&m.op, MountOp::Bind { src, .. } if src == Path::new("/home/alice/.config"))),
            "{profile} {link}"
        );
        let w = p.warnings.join("\n");
        assert!(
            w.contains(&format!("refused: {link} is a symlink to "))
                && w.contains("uid 1000")
                && w.contains("--bind "),
            "{profile} {link}: {w}"
        );
    }
    // A subordinate id's link (root inside an earlier sandbox) is no better.
    let fs = with_link(
        merged_usr(),
        "/home/alice/.mozilla",
        "/home/alice/.ssh",
        100000,
    );
    let p = plan(&["--profile", "browser", "true"], &host(true), &fs).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("uid 100000")),
        "{:?}",
        p.warnings
    );
    // A required grant through such a link stops the launch (shell's `ro-bind ~`).
    let mut fs = with_link(merged_usr(), "/home/alice", "/var/home/alice", 1000);
    fs.entries.insert("/var/home/alice".into(), Entry::Dir);
    let e = plan(&["--profile", "shell", "true"], &host(true), &fs).unwrap_err();
    assert!(
        e.to_string()
            .contains("refused: /home/alice is a symlink to /var/home/alice"),
        "{e}"
    );
    // The same link owned by root (an administrator's layout) is followed.
    let fs = with_link(fs, "/home/alice", "/var/home/alice", 0);
    let p = plan(&["--profile", "shell", "true"], &host(true), &fs).unwrap();
    assert_eq!(binds_from(&p, "/var/home/alice"), 1);
    // A root link that leads on to a user's link is refused at the user's link.
    let mut fs = with_link(merged_usr(), "/home/alice/.mozilla", "/opt/moz", 0);
    fs = with_link(fs, "/opt/moz", "/home/alice/.ssh", 1000);
    fs.entries.insert("/home/alice/.ssh".into(), Entry::Dir);
    let p = plan(&["--profile", "browser", "true"], &host(true), &fs).unwrap();
    assert_eq!(binds_from(&p, "/home/alice/.ssh"), 0);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("refused: /opt/moz is a symlink")),
        "{:?}",
        p.warnings
    );
    // A path typed on the command line is the user's own: it may follow links.
    let fs = with_link(base, "/home/alice/dl", "/data/cache", 1000);
    let mut fs = fs;
    fs.real
        .insert("/home/alice/dl".into(), "/data/cache".into());
    let p = plan(&["--bind", "/home/alice/dl", "true"], &host(true), &fs).unwrap();
    assert_eq!(binds_from(&p, "/data/cache"), 1);
}

#[test]
fn the_current_directory_grant_skips_shared_places() {
    let mut fs = merged_usr();
    for d in [
        "/tmp",
        "/var/tmp",
        "/dev/shm",
        "/run/user/1000/x",
        "/home",
        "/",
        "/tmp/ssh-XXXX",
        "/tmp/build",
        "/run",
    ] {
        fs.entries.insert(d.into(), Entry::Dir);
    }
    fs.sockets
        .insert("/tmp/ssh-XXXX".into(), vec!["agent.123".into()]);
    for profile in ["default", "dev", "shell"] {
        for (cwd, why) in [
            ("/tmp", "shared with other programs"),
            ("/var/tmp", "shared with other programs"),
            ("/dev/shm", "shared with other programs"),
            ("/run", "runtime directory"),
            ("/run/user/1000/x", "runtime directory"),
            ("/home", "$HOME or a directory above it"),
            ("/", "$HOME or a directory above it"),
            ("/tmp/ssh-XXXX", "holds the socket /tmp/ssh-XXXX/agent.123"),
        ] {
            let mut h = host(true);
            h.cwd = Some(cwd.into());
            let p = plan(&["--profile", profile, "true"], &h, &fs)
                .unwrap_or_else(|e| panic!("{profile} in {cwd}: {e}"));
            assert!(
                !p.mounts
                    .iter()
                    .any(|m| matches!(&m.op, MountOp::Bind { src, .. } if src == Path::new(cwd))),
                "{profile} bound {cwd}"
            );
            assert!(
                p.notices
                    .iter()
                    .any(|n| n.contains(&format!("not binding {cwd}")) && n.contains(why)),
                "{profile} in {cwd}: {:?}",
                p.notices
            );
        }
        // A hidden directory of the home reached through a user's link (the shell
        // followed `proj/build -> ~/.config/autostart`) is not granted; the same
        // directory entered by its real path, or an ordinary one through a link, is.
        let mut h = host(true);
        h.cwd = Some("/home/alice/.config/autostart".into());
        h.cwd_via = Some(("/home/alice/proj/build".into(), Some(1000)));
        let mut fs2 = merged_usr();
        fs2.entries
            .insert("/home/alice/.config/autostart".into(), Entry::Dir);
        fs2.entries.insert("/home/alice/work".into(), Entry::Dir);
        let p = plan(&["--profile", profile, "true"], &h, &fs2).unwrap();
        assert_eq!(
            binds_from(&p, "/home/alice/.config/autostart"),
            0,
            "{profile}"
        );
        assert!(
            p.notices
                .iter()
                .any(|n| n
                    .contains("through the symlink /home/alice/proj/build (owned by uid 1000)")),
            "{:?}",
            p.notices
        );
        h.cwd_via = None;
        let p = plan(&["--profile", profile, "true"], &h, &fs2).unwrap();
        assert_eq!(
            binds_from(&p, "/home/alice/.config/autostart"),
            1,
            "{profile}"
        );
        h.cwd = Some("/home/alice/work".into());
        h.cwd_via = Some(("/home/alice/w".into(), Some(1000)));
        let p = plan(&["--profile", profile, "true"], &h, &fs2).unwrap();
        assert_eq!(binds_from(&p, "/home/alice/work"), 1, "{profile}");
        // A directory of one's own under /tmp, with no socket in it, is granted.
        let mut h = host(true);
        h.cwd = Some("/tmp/build".into());
        let p = plan(&["--profile", profile, "true"], &h, &fs).unwrap();
        assert_eq!(binds_from(&p, "/tmp/build"), 1, "{profile}");
    }
}

#[test]
fn overlapping_subordinate_ranges_are_refused() {
    let mut h = host(true);
    h.subid_overlaps = vec![
        "/etc/subuid line 1 `alice:100000:65536` overlaps line 2 `bob:100000:10` of another user"
            .into(),
    ];
    let e = plan(&["true"], &h, &merged_usr()).unwrap_err();
    assert!(
        e.to_string()
            .contains("line 1 `alice:100000:65536` overlaps line 2 `bob:100000:10`"),
        "{e}"
    );
    // Without subordinate ids in use, they do not matter.
    let mut h = host(false);
    h.subid_overlaps = vec!["x".into()];
    assert!(plan(&["true"], &h, &merged_usr()).is_ok());
}

/// `--print-profile` prints a profile that gives the same plan: every field, for
/// every shipped profile (only where each entry came from may differ).
#[test]
fn print_profile_round_trips_every_field() {
    let mut fs = merged_usr();
    for d in [
        "/home/alice/.mozilla",
        "/home/alice/.cache/mozilla",
        "/home/alice/.config/chromium",
        "/home/alice/.cargo/bin",
        "/home/alice/.cargo/registry",
        "/home/alice/.npm",
        "/home/alice/Downloads",
        "/opt",
    ] {
        fs.entries.insert(d.into(), Entry::Dir);
    }
    let dir = std::env::temp_dir().join(format!("sbx-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let h = host(true);
    let vars = Vars::from_host(&h);
    fn normalised(p: &Plan) -> serde_json::Value {
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("origin");
                    m.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut v = serde_json::to_value(p).unwrap();
        strip(&mut v);
        // Notices are said from the profile's composition (a desktop profile without a
        // display): informational, not what the sandbox is.
        for k in ["profile", "profile_files", "skipped", "notices"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    }
    // Beside the shipped profiles, one that sets every key to something not default.
    let every = dir.join("every.toml");
    std::fs::write(
        &every,
        r#"version = 1
description = "every key"
include = ["system"]
hostname = "box"
cwd = "/work"
net = "user"
ids = "single"
uid = 0
gid = 0
seccomp = "strict"
landlock = "require"
tcp_bind = [8080]
tcp_connect = [443, 80]
seccomp_allow = ["ptrace"]
seccomp_deny = ["mincore"]
mask = ["~/.netrc"]
[env]
keep = ["TERM", "EDITOR"]
set = { A = "1" }
unset = ["LANG"]
[rlimits]
nofile = 100
nproc = 50
fsize = "1M"
as = "2G"
core = 0
cpu = 60
stack = "8M"
memlock = "64K"
[dbus]
own = ["org.example.App"]
talk = ["org.freedesktop.portal.*"]
[[mount]]
type = "proc"
dst = "/proc"
[[mount]]
type = "dev"
dst = "/dev"
size = "8M"
[[mount]]
type = "tmpfs"
dst = "/tmp"
size = "10M"
mode = "1700"
[[mount]]
type = "dir"
dst = "/work"
mode = "0711"
[[mount]]
type = "file"
dst = "/work/motd2"
content = "hi"
mode = "0600"
[[mount]]
type = "symlink"
target = "/work"
dst = "/w"
[[mount]]
type = "mqueue"
[[mount]]
type = "bind"
src = "/srv/proj"
dst = "/work/p"
[[mount]]
type = "dev-bind"
src = "/srv/proj"
dst = "/work/d"
[[mount]]
type = "tmp-overlay"
src = "/srv/proj"
dst = "/work/o"
size = "5M"
"#,
    )
    .unwrap();
    fs.entries.insert("/srv/proj".into(), Entry::Dir);
    let every = every.to_string_lossy().into_owned();
    let names = crate::profile::BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .chain([every.as_str()]);
    for name in names {
        let text = crate::tools::render(name, &Locations::none(), &vars, &h, &fs, false)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, &text).unwrap();
        let want = plan(&["--profile", name, "true"], &h, &fs).unwrap();
        let got = plan(&["--profile", file.to_str().unwrap(), "true"], &h, &fs)
            .unwrap_or_else(|e| panic!("{name}: the printed profile does not load: {e}\n{text}"));
        assert_eq!(
            normalised(&got),
            normalised(&want),
            "{name}: the printed profile plans differently:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The trust rule's clauses, one case each, with the home bound writable (a user's
/// own profile): the profile directory ~/.config/sbx/profiles is reachable unless a
/// later mount covers it for the whole run.
#[test]
fn the_profile_directory_counts_as_covered_only_where_the_sandbox_cannot_undo_it() {
    let dir = std::env::temp_dir().join(format!("sbx-plan-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = |name: &str, masks: &str| {
        let prof = dir.join(format!("{name}.toml"));
        std::fs::write(
            &prof,
            format!(
                "version = 1\ninclude = [\"minimal\"]\nmask = [{masks}]\n\
                 [[mount]]\ntype = \"bind\"\nsrc = \"/home/alice\"\n"
            ),
        )
        .unwrap();
        prof.to_str().unwrap().to_string()
    };
    let base = |config: Entry| {
        let mut fs = merged_usr();
        fs.entries.insert("/home/alice".into(), Entry::Dir);
        fs.entries.insert("/home/alice/.config".into(), config);
        fs
    };
    let real_config = || {
        let mut fs = base(Entry::Dir);
        for d in [
            "/home/alice/.config/sbx",
            "/home/alice/.config/sbx/profiles",
        ] {
            fs.entries.insert(d.into(), Entry::Dir);
        }
        fs
    };
    let refused = |prof: &str, fs: &FakeFs, why: &str| {
        let e = plan(&["--profile", prof, "true"], &host(true), fs).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("write access to the profile directory") && e.contains(why),
            "{prof}: {e}"
        );
    };
    let deep = profile("deep", "\"~/.config/sbx\"");
    let top = profile("top", "\"~/.config\"");
    let none = profile("none", "");

    // Nothing covers it: refused.
    refused(&none, &real_config(), "no later mount covers it");
    // A mask right below the bind's destination holds (a mount point cannot be
    // renamed): allowed.
    assert!(plan(&["--profile", &top, "true"], &host(true), &real_config()).is_ok());
    // A mask deeper down does not: the sandbox could rename ~/.config (the mask
    // moves with it) and make a new ~/.config/sbx/profiles.
    refused(
        &deep,
        &real_config(),
        "could rename /home/alice/.config and make",
    );
    // A mask of a directory that does not exist is skipped at launch: it covers
    // nothing, and the bind could make the directory.
    let mut fs = base(Entry::Missing);
    fs.entries
        .remove(std::path::Path::new("/home/alice/.config"));
    refused(&top, &fs, "no later mount covers it");
    // ~/.config a file: the sandbox could replace it with a directory.
    refused(&top, &base(Entry::File), "a file on the way");
    // ~/.config a user's link to ~/dotfiles, masked where it really is: the real
    // directory is covered, but the link is the bind's to replace (pointing
    // ~/.config at a directory of the sandbox's making).
    let mut fs = with_link(base(Entry::Dir), "/home/alice/.config", "dotfiles", 1000);
    for d in [
        "/home/alice/dotfiles/sbx",
        "/home/alice/dotfiles/sbx/profiles",
    ] {
        fs.entries.insert(d.into(), Entry::Dir);
    }
    for (l, r) in [
        ("/home/alice/.config", "/home/alice/dotfiles"),
        ("/home/alice/.config/sbx", "/home/alice/dotfiles/sbx"),
        (
            "/home/alice/.config/sbx/profiles",
            "/home/alice/dotfiles/sbx/profiles",
        ),
    ] {
        fs.real.insert(l.into(), r.into());
    }
    let dotfiles = profile("dotfiles", "\"~/dotfiles\"");
    refused(&dotfiles, &fs, "reached through a symlink");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The profile-path resolver's edges: a loop of root's links ends in ELOOP, `..`
/// steps back through what was resolved, and `create` makes nothing outside $HOME.
#[test]
fn profile_path_resolution_edges() {
    use super::trust::{resolve_for_create, resolve_profile_path, Unresolved};
    let mut fs = merged_usr();
    fs = with_link(fs, "/srv/a", "/srv/b", 0);
    fs = with_link(fs, "/srv/b", "/srv/a", 0);
    match resolve_profile_path(&fs, Path::new("/srv/a/x"), None) {
        Err(Unresolved::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ELOOP)),
        other => panic!("{other:?}"),
    }
    // A chain of 40 root links resolves (the kernel's own limit, path_resolution(7));
    // one more is ELOOP.
    let chain = |n: usize| {
        let mut fs = merged_usr();
        for i in 0..n {
            fs = with_link(fs, &format!("/srv/l{i}"), &format!("/srv/l{}", i + 1), 0);
        }
        fs.entries.insert(format!("/srv/l{n}").into(), Entry::Dir);
        fs
    };
    assert_eq!(
        resolve_profile_path(&chain(40), Path::new("/srv/l0"), None).unwrap(),
        PathBuf::from("/srv/l40")
    );
    match resolve_profile_path(&chain(41), Path::new("/srv/l0"), None) {
        Err(Unresolved::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ELOOP)),
        other => panic!("{other:?}"),
    }
    // `..` after a root link steps back from where the link led.
    let mut fs = with_link(merged_usr(), "/opt/tool", "/usr/lib/tool", 0);
    fs.entries.insert("/usr/lib/tool".into(), Entry::Dir);
    fs.entries.insert("/usr/lib/share".into(), Entry::Dir);
    assert_eq!(
        resolve_profile_path(&fs, Path::new("/opt/tool/../share"), None).unwrap(),
        PathBuf::from("/usr/lib/share")
    );
    // `create` inside $HOME only, and a relative path without a cwd is not found.
    let fs = merged_usr();
    let home = Path::new("/home/alice");
    assert!(resolve_for_create(&fs, Path::new("/srv/new"), home).is_err());
    assert!(resolve_for_create(&fs, Path::new("/home/alice"), home).is_err());
    assert!(resolve_profile_path(&fs, Path::new("rel"), None).is_err());
    let mut fs = merged_usr();
    fs.entries.insert("/home/alice".into(), Entry::Dir);
    assert_eq!(
        resolve_for_create(&fs, Path::new("/home/alice/.config/app"), home).unwrap(),
        PathBuf::from("/home/alice/.config/app")
    );
    // An error other than "missing" on the way (a loop of root's links) is the
    // error, not a directory to make.
    let mut looped = merged_usr();
    looped.entries.insert("/home/alice".into(), Entry::Dir);
    looped = with_link(looped, "/home/alice/a", "/home/alice/b", 0);
    looped = with_link(looped, "/home/alice/b", "/home/alice/a", 0);
    match resolve_for_create(&looped, Path::new("/home/alice/a/x"), home) {
        Err(Unresolved::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ELOOP)),
        other => panic!("{other:?}"),
    }
    // A path to make that ends in `..` names no new directory: refused.
    assert!(resolve_for_create(&fs, Path::new("/home/alice/m1/m2/.."), home).is_err());
    // A planted link on the way to a directory to be made is refused, not followed.
    let fs = with_link(merged_usr(), "/home/alice/.config", "/etc", 1000);
    assert!(matches!(
        resolve_for_create(&fs, Path::new("/home/alice/.config/app"), home),
        Err(Unresolved::Planted { .. })
    ));
}

/// `[limits]` and the limit options: the command line over the profile, clamped to
/// the caller's hard limits (host(): nofile 4096, nproc 2000), `unlimited`, and the
/// cgroup ceilings decided from the host's delegation, the same for --dry-run.
#[test]
fn limits_from_profile_and_command_line() {
    let fs = merged_usr();
    let h = host(false);
    let get = |p: &Plan, k: &str| p.rlimits.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    // minimal's nproc 4096 is above the caller's 2000: the caller's holds.
    let p = plan(&["--profile", "minimal", "true"], &h, &fs).unwrap();
    assert_eq!(get(&p, "nproc"), Some(2000));
    assert!(p.notices.iter().all(|n| !n.contains("running as root")));
    // A profile without a process ceiling gets the default one; `unlimited` lifts it.
    let p = plan(&["--profile", "system", "true"], &h, &fs).unwrap();
    assert_eq!(
        get(&p, "nproc"),
        Some(2000),
        "4096, clamped to the caller's 2000"
    );
    let mut big = host(false);
    big.rlimit_hard.retain(|(k, _)| k != "nproc");
    let p = plan(&["--profile", "system", "true"], &big, &fs).unwrap();
    assert_eq!(get(&p, "nproc"), Some(super::limits::DEFAULT_NPROC));
    let p = plan(
        &["--profile", "system", "--limit", "nproc=unlimited", "true"],
        &big,
        &fs,
    )
    .unwrap();
    assert_eq!(get(&p, "nproc"), Some(super::limits::UNLIMITED));
    // Exactly the caller's hard limit is fine.
    let p = plan(&["--limit", "nproc=2000", "true"], &h, &fs).unwrap();
    assert_eq!(get(&p, "nproc"), Some(2000));
    // The kernel exempts uid 0 from RLIMIT_NPROC: said (but not of no ceiling).
    let mut root = big.clone();
    root.uid = 0;
    let p = plan(
        &["--profile", "system", "--limit", "nproc=unlimited", "true"],
        &root,
        &fs,
    )
    .unwrap();
    assert!(
        p.notices.iter().all(|n| !n.contains("running as root")),
        "{:?}",
        p.notices
    );
    let mut root = host(false);
    root.uid = 0;
    let p = plan(&["--profile", "minimal", "true"], &root, &fs).unwrap();
    assert!(
        p.notices.iter().any(|n| n.contains("running as root")),
        "{:?}",
        p.notices
    );
    for args in [
        &["--memory", "0"][..],
        &["--pids", "0"],
        &["--limit", "pids=0"],
    ] {
        let mut a = args.to_vec();
        a.push("true");
        let e = plan(&a, &h, &fs).unwrap_err().to_string();
        assert!(e.contains("0 would stop the sandbox"), "{e}");
    }
    assert!(p.cgroup.is_none());
    let p = plan(
        &[
            "--limit", "nproc=64", "--limit", "core=0", "--limit", "as=1G", "true",
        ],
        &h,
        &fs,
    )
    .unwrap();
    assert_eq!(get(&p, "nproc"), Some(64));
    assert_eq!(get(&p, "core"), Some(0));
    assert_eq!(get(&p, "as"), Some(1 << 30));
    // The last one given wins; `unlimited` lifts the profile's up to the caller's.
    let p = plan(
        &[
            "--profile",
            "untrusted",
            "--limit",
            "nofile=10",
            "--limit",
            "nofile=unlimited",
            "--limit",
            "nproc=5",
            "true",
        ],
        &h,
        &fs,
    )
    .unwrap();
    assert_eq!(get(&p, "nofile"), Some(4096));
    assert_eq!(get(&p, "nproc"), Some(5));
    assert_eq!(get(&p, "cpu"), Some(600), "the profile's others stay");
    for (args, want) in [
        (
            &["--limit", "nproc=2001"][..],
            "--limit nproc=2001: above your own hard limit (2000)",
        ),
        (&["--limit", "nproc"][..], "expected KEY=VALUE"),
        (&["--limit", "procs=1"][..], "unknown limit \"procs\""),
        (&["--limit", "as=lots"][..], "--limit as=lots: as:"),
        (&["--cpus", "0"][..], "--cpus 0: cpus 0 is out of range"),
        (&["--memory", "2X"][..], "--memory 2X: memory:"),
    ] {
        let mut a = args.to_vec();
        a.push("true");
        let e = plan(&a, &h, &fs).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn cgroup_limits_follow_the_delegation() {
    let mut fs = merged_usr();
    let h = host(false);
    // No cgroup2 mount at all: an error naming the option, for --dry-run as for a launch.
    let e = plan(&["--memory", "1G", "true"], &h, &fs)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--memory 1G: cannot set memory 1 GiB: no cgroup v2"),
        "{e}"
    );
    // A login session scope: not delegated, the fix named.
    fs.mountinfo = "30 26 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n".into();
    let e = plan(&["--pids", "50", "true"], &h, &fs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("session-2.scope, and its parent /sys/fs/cgroup/user.slice/user-1000.slice belongs to uid 0"), "{e}");
    assert!(e.contains("systemd-run --user --scope"), "{e}");
    // best-effort in the profile: a notice, no leaf; --require cgroup makes it an error.
    let dir = std::env::temp_dir().join(format!("sbx-cg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prof = dir.join("be.toml");
    std::fs::write(&prof, "version = 1\ninclude = [\"minimal\"]\n[limits]\nmemory = \"512M\"\ncgroup = \"best-effort\"\n").unwrap();
    let prof = prof.to_str().unwrap();
    let p = plan(&["--profile", prof, "true"], &h, &fs).unwrap();
    assert!(p.cgroup.is_none());
    assert!(
        p.notices
            .iter()
            .any(|n| n.contains("best-effort\": running without memory 512 MiB")),
        "{:?}",
        p.notices
    );
    let e = plan(&["--profile", prof, "--require", "cgroup", "true"], &h, &fs)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("be.toml:3:1: limits: cannot set memory 512 MiB"),
        "{e}"
    );
    // On the command line it is wanted: an error even over a best-effort profile.
    assert!(plan(&["--profile", prof, "--pids", "9", "true"], &h, &fs).is_err());
    // `unlimited` on the command line drops the profile's ceiling.
    let p = plan(
        &["--profile", prof, "--memory", "unlimited", "true"],
        &h,
        &fs,
    )
    .unwrap();
    assert!(p.cgroup.is_none() && p.notices.iter().all(|n| !n.contains("best-effort")));
    // Delegated (the user manager's layout): the leaf beside sbx's cgroup, named
    // after the launcher, with the controllers it lacks turned on.
    let mut h = host(false);
    h.cgroup_self = std::cell::OnceCell::from((
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/t.scope\n".to_string(),
        777,
    ));
    let parent = PathBuf::from(
        "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/t.scope",
    );
    // Started by `systemd-run --user --scope -p Delegate=yes`: systemd's mark.
    fs.xattrs
        .insert((parent.clone(), "user.delegate".into()), b"1".to_vec());
    for f in ["", "cgroup.procs", "cgroup.subtree_control"] {
        fs.owners.insert(parent.join(f), 1000);
    }
    fs.owners.insert(parent.clone(), 1000);
    fs.files.insert(
        parent.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n".into(),
    );
    fs.files
        .insert(parent.join("cgroup.subtree_control"), "memory\n".into());
    let p = plan(
        &["--profile", prof, "--cpus", "1.5", "--pids", "300", "true"],
        &h,
        &fs,
    )
    .unwrap();
    let cg = p.cgroup.expect("a cgroup plan");
    assert_eq!(cg.parent, parent);
    assert_eq!(cg.leaf, "sbx-4242-777");
    assert_eq!(cg.launcher.as_deref(), Some("sbx-4242-777.launcher"));
    assert_eq!(cg.enable, vec!["cpu", "pids"]);
    assert_eq!(
        cg.writes,
        vec![
            ("cgroup.max.descendants".to_string(), "64".into(), true),
            ("memory.max".to_string(), (512u64 << 20).to_string(), true),
            ("memory.swap.max".into(), "0".into(), false),
            ("cpu.max".into(), "150000 100000".into(), true),
            ("pids.max".into(), "300".into(), true),
        ]
    );
    // With a leaf, no writable bind may reach the cgroup file system (the sandbox
    // would own its limits); read-only is fine, and so is any bind without a leaf.
    fs.entries.insert("/sys/fs/cgroup".into(), Entry::Dir);
    fs.real
        .insert("/sys/fs/cgroup".into(), "/sys/fs/cgroup".into());
    fs.real.insert("/sys".into(), "/sys".into());
    for src in ["/sys/fs/cgroup", "/sys"] {
        let e = plan(&["--pids", "9", "--bind", src, "true"], &h, &fs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds the cgroup v2 file system"), "{src}: {e}");
        assert!(plan(&["--pids", "9", "--ro-bind", src, "true"], &h, &fs).is_ok());
        assert!(plan(&["--bind", src, "true"], &h, &fs).is_ok());
    }
    // A hybrid host's delegation without controllers: the v1 binding said once.
    let mut hy = merged_usr();
    hy.mountinfo = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        .into();
    let mut hh = host(false);
    hh.cgroup_self = std::cell::OnceCell::from(("0::/d/alice/s\n".to_string(), 777));
    let dp = PathBuf::from("/sys/fs/cgroup/unified/d/alice");
    for f in ["", "cgroup.procs", "cgroup.subtree_control"] {
        hy.owners.insert(dp.join(f), 1000);
    }
    hy.owners.insert(dp.clone(), 1000);
    let e = plan(&["--memory", "1G", "true"], &hh, &hy)
        .unwrap_err()
        .to_string();
    assert_eq!(e.matches("bound to cgroup v1").count(), 1, "{e}");
    assert!(!e.contains("besides"), "{e}");
    // A writable bind elsewhere is no concern of the cgroup's.
    assert!(plan(&["--pids", "9", "--bind", "/srv/proj", "true"], &h, &fs).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

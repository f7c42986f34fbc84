//! The pure part on recorded layouts: what /proc/self/cgroup and mountinfo say on a
//! systemd desktop (unified), in a login session scope, on a hybrid host (this
//! project's test machine), on a cgroup v1-only host, in a container with a
//! read-only cgroup mount, and under an administrator's delegation.

use super::*;
use crate::host::Entry;
use std::collections::BTreeMap;
use std::io;

/// Owners and file contents of a recorded host (absent owner: root).
#[derive(Default)]
struct Layout {
    owners: BTreeMap<PathBuf, u32>,
    files: BTreeMap<PathBuf, String>,
    xattrs: BTreeMap<(PathBuf, String), Vec<u8>>,
}

impl Layout {
    /// `dir` and its delegation files owned by `uid`, offering `controllers`.
    fn delegated(mut self, dir: &str, uid: u32, controllers: &str, enabled: &str) -> Self {
        for p in ["", "cgroup.procs", "cgroup.subtree_control"] {
            self.owners.insert(Path::new(dir).join(p), uid);
        }
        self.owners.insert(PathBuf::from(dir), uid);
        self.files.insert(
            Path::new(dir).join("cgroup.controllers"),
            format!("{controllers}\n"),
        );
        self.files.insert(
            Path::new(dir).join("cgroup.subtree_control"),
            format!("{enabled}\n"),
        );
        self
    }
}

impl HostFs for Layout {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        Ok(p.to_path_buf())
    }
    fn entry(&self, _: &Path) -> Entry {
        Entry::Dir
    }
    fn is_executable_file(&self, _: &Path) -> bool {
        false
    }
    fn is_privileged_helper(&self, _: &Path) -> bool {
        false
    }
    fn owner(&self, p: &Path) -> Option<u32> {
        Some(self.owners.get(p).copied().unwrap_or(0))
    }
    fn sockets_in(&self, _: &Path) -> Vec<std::ffi::OsString> {
        Vec::new()
    }
    fn names_in(&self, _: &Path) -> Vec<std::ffi::OsString> {
        Vec::new()
    }
    fn read_file(&self, p: &Path, _: u64) -> Option<Vec<u8>> {
        self.files.get(p).map(|t| t.as_bytes().to_vec())
    }
    fn xattr(&self, p: &Path, name: &str) -> Option<Vec<u8>> {
        self.xattrs
            .get(&(p.to_path_buf(), name.to_string()))
            .cloned()
    }
}

/// Debian 12 / Fedora desktop, unified hierarchy (systemd 252).
const UNIFIED_MOUNTINFO: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
26 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 26 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const TERMINAL: &str = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-5a1b.scope\n";
const APP_SLICE: &str =
    "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice";

/// This project's test machine: v1 controllers, an empty v2 hierarchy at unified.
const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/04c7
1:cpu:/
0::/
";

fn all() -> Request {
    Request {
        memory: Some(1 << 30),
        cpus: Some(0.5),
        pids: Some(100),
    }
}

const SCOPE: &str = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-5a1b.scope";

#[test]
fn under_the_user_manager_only_a_delegated_scope_takes_leaves() {
    // Everything under user@1000.service is the user's, but systemd writes it: the
    // terminal's scope and its slice are not delegated, and sbx says how to get one.
    let l = Layout::default()
        .delegated(APP_SLICE, 1000, "cpu memory pids", "memory")
        .delegated(SCOPE, 1000, "cpu memory pids", "");
    let e = find(1000, TERMINAL, UNIFIED_MOUNTINFO, &l, &all()).unwrap_err();
    assert_eq!(e, Missing::SystemdNotDelegated(SCOPE.into()));
    assert!(
        e.explain()
            .contains("systemd-run --user --scope -p Delegate=yes sbx"),
        "{}",
        e.explain()
    );
    // `systemd-run --user --scope -p Delegate=yes`: the scope carries systemd's mark;
    // the leaf goes inside it, and the launcher moves out of the way first.
    for mark in ["user.delegate", "trusted.delegate"] {
        let mut l = Layout::default().delegated(SCOPE, 1000, "cpu memory pids", "memory");
        l.xattrs.insert((SCOPE.into(), mark.into()), b"1".to_vec());
        let d = find(1000, TERMINAL, UNIFIED_MOUNTINFO, &l, &all()).unwrap();
        assert_eq!(
            d,
            Delegation {
                parent: SCOPE.into(),
                enable: vec!["cpu", "pids"],
                launcher_moves: true
            }
        );
        // Marked, but another user's: no.
        let mut l = Layout::default().delegated(SCOPE, 1001, "cpu memory pids", "");
        l.xattrs.insert((SCOPE.into(), mark.into()), b"1".to_vec());
        assert!(find(1000, TERMINAL, UNIFIED_MOUNTINFO, &l, &all()).is_err());
    }
}

#[test]
fn without_nsdelegate_the_sandbox_could_write_its_limits() {
    let own = "0::/srv/alice/session\n";
    let mi = "30 26 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
    let l = Layout::default().delegated("/sys/fs/cgroup/srv/alice", 1000, "cpu memory pids", "");
    let e = find(1000, own, mi, &l, &all()).unwrap_err();
    assert_eq!(e, Missing::NoNsdelegate("/sys/fs/cgroup".into()));
    assert!(
        e.explain().contains("remount,nsdelegate"),
        "{}",
        e.explain()
    );
    let mi = "30 26 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let d = find(1000, own, mi, &l, &all()).unwrap();
    assert_eq!(d.parent, Path::new("/sys/fs/cgroup/srv/alice"));
    assert!(!d.launcher_moves);
}

#[test]
fn a_login_session_scope_is_not_delegated() {
    let own = "0::/user.slice/user-1000.slice/session-2.scope\n";
    let l = Layout::default();
    let e = find(1000, own, UNIFIED_MOUNTINFO, &l, &all()).unwrap_err();
    assert_eq!(
        e,
        Missing::NotDelegated(
            "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope".into(),
            "/sys/fs/cgroup/user.slice/user-1000.slice".into(),
            Some(0)
        )
    );
    assert!(
        e.explain().contains("systemd-run --user --scope"),
        "{}",
        e.explain()
    );
}

#[test]
fn a_directory_owned_without_its_files_is_not_delegated() {
    // chown of the directory alone: cgroup.procs stays root's, and moving a
    // process in would fail.
    let own = "0::/srv/alice/session\n";
    let parent = "/sys/fs/cgroup/srv/alice";
    let mut l = Layout::default();
    l.owners.insert(parent.into(), 1000);
    assert!(matches!(
        find(1000, own, UNIFIED_MOUNTINFO, &l, &all()),
        Err(Missing::NotDelegated(..))
    ));
    // Another user's delegation is not ours.
    let l = Layout::default().delegated(parent, 1001, "cpu memory pids", "");
    assert!(matches!(
        find(1000, own, UNIFIED_MOUNTINFO, &l, &all()),
        Err(Missing::NotDelegated(_, _, Some(1001)))
    ));
    let l = Layout::default().delegated(parent, 1000, "cpu memory pids", "cpu memory pids");
    assert_eq!(
        find(1000, own, UNIFIED_MOUNTINFO, &l, &all()).unwrap(),
        Delegation {
            parent: parent.into(),
            enable: vec![],
            launcher_moves: false
        }
    );
}

#[test]
fn the_hybrid_layout_says_the_controllers_are_bound_to_v1() {
    // The root cgroup: nothing above it to make a leaf in.
    let l = Layout::default();
    let e = find(0, HYBRID_CGROUP, HYBRID_MOUNTINFO, &l, &all()).unwrap_err();
    assert_eq!(e, Missing::RootCgroup("/sys/fs/cgroup/unified".into()));
    let note = v1_note(HYBRID_MOUNTINFO, &all()).unwrap();
    assert!(
        note.contains("cpu at /sys/fs/cgroup/cpu, memory at /sys/fs/cgroup/memory, pids at /sys/fs/cgroup/pids"),
        "{note}"
    );
    assert_eq!(v1_note(UNIFIED_MOUNTINFO, &all()), None);
    // An administrator's delegation on the v2 side has no controllers to give.
    let own = "4:memory:/\n0::/sbx-test/alice/session\n";
    let l = Layout::default().delegated("/sys/fs/cgroup/unified/sbx-test/alice", 1000, "", "");
    let e = find(1000, own, HYBRID_MOUNTINFO, &l, &all()).unwrap_err();
    let Missing::Controllers(parent, missing, v1) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(parent, Path::new("/sys/fs/cgroup/unified/sbx-test/alice"));
    assert_eq!(missing, &vec!["cpu", "memory", "pids"]);
    assert!(v1.contains(&("memory".into(), "/sys/fs/cgroup/memory".into())));
    let text = e.explain();
    assert!(
        text.contains("memory is bound to cgroup v1 at /sys/fs/cgroup/memory"),
        "{text}"
    );
    assert!(
        text.contains("systemd.unified_cgroup_hierarchy=1"),
        "{text}"
    );
    // Only what is asked for is needed: nothing, then nothing is missing.
    let none = Request::default();
    // (and then the missing nsdelegate is what stops it).
    assert_eq!(
        find(1000, own, HYBRID_MOUNTINFO, &l, &none).unwrap_err(),
        Missing::NoNsdelegate("/sys/fs/cgroup/unified".into())
    );
}

#[test]
fn sys_fs_cgroup_is_preferred_among_mounts_of_the_whole_hierarchy() {
    let mi = "\
30 26 0:27 / /mnt/other rw - cgroup2 cgroup2 rw,nsdelegate
31 26 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
32 26 0:27 / /mnt/third rw - cgroup2 cgroup2 rw,nsdelegate
";
    let l = Layout::default().delegated("/sys/fs/cgroup/srv/alice", 1000, "pids", "");
    let req = Request {
        pids: Some(9),
        ..Default::default()
    };
    let d = find(1000, "0::/srv/alice/session\n", mi, &l, &req).unwrap();
    assert_eq!(d.parent, Path::new("/sys/fs/cgroup/srv/alice"));
}

#[test]
fn a_v1_only_host_has_no_cgroup2() {
    let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
    let own = "4:memory:/user.slice\n";
    let e = find(1000, own, mi, &Layout::default(), &all()).unwrap_err();
    assert_eq!(e, Missing::NoCgroup2);
    assert!(e.explain().contains("cgroup v1 only"));
}

#[test]
fn a_read_only_cgroup_mount_is_refused() {
    // Docker without --cgroupns=private/rw: the container's own cgroup, read-only.
    let mi = "650 640 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup ro\n";
    let own = "0::/\n";
    let e = find(1000, own, mi, &Layout::default(), &all()).unwrap_err();
    assert_eq!(e, Missing::ReadOnly("/sys/fs/cgroup".into()));
}

#[test]
fn no_v2_line_or_a_foreign_mount_root_is_not_found() {
    assert_eq!(
        find(
            1000,
            "4:memory:/\n",
            UNIFIED_MOUNTINFO,
            &Layout::default(),
            &all()
        )
        .unwrap_err(),
        Missing::NotInV2
    );
    // A mount of another part of the hierarchy does not show sbx's cgroup.
    let mi = "30 26 0:27 /machine.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    assert_eq!(
        find(1000, TERMINAL, mi, &Layout::default(), &all()).unwrap_err(),
        Missing::NotInV2
    );
}

#[test]
fn a_mount_of_a_subtree_and_escaped_mount_points_resolve() {
    // The hierarchy mounted from /srv at a path with a space (\040).
    let mi = "30 26 0:27 /srv /mnt/cg\\040v2 rw - cgroup2 cgroup2 rw,nsdelegate\n";
    let parent = "/mnt/cg v2/alice";
    let l = Layout::default().delegated(parent, 1000, "memory", "");
    let req = Request {
        memory: Some(1 << 20),
        ..Default::default()
    };
    assert_eq!(
        find(1000, "0::/srv/alice/session\n", mi, &l, &req).unwrap(),
        Delegation {
            parent: parent.into(),
            enable: vec!["memory"],
            launcher_moves: false
        }
    );
}

#[test]
fn values_written() {
    assert_eq!(cpu_max(0.5), "50000 100000");
    assert_eq!(cpu_max(2.0), "200000 100000");
    // The kernel's floor: 1 ms per period.
    assert_eq!(cpu_max(0.001), "1000 100000");
    assert_eq!(
        all().writes(),
        vec![
            ("cgroup.max.descendants".into(), "64".into(), true),
            ("memory.max".into(), "1073741824".into(), true),
            ("memory.swap.max".into(), "0".into(), false),
            ("cpu.max".into(), "50000 100000".into(), true),
            ("pids.max".into(), "100".into(), true),
        ]
    );
    assert_eq!(Request::default().writes().len(), 1);
    assert!(Request::default().is_empty());
    assert!(!all().is_empty());
}

#[test]
fn leaf_names_name_their_launcher() {
    let n = leaf_name(4242, 987654);
    assert_eq!(n, "sbx-4242-987654");
    assert_eq!(leaf_owner(&n), Some((4242, 987654)));
    for other in [
        "sbx-",
        "sbx-1",
        "sbx-a-1",
        "app.slice",
        "sbx-1-x",
        "xsbx-1-2",
    ] {
        assert_eq!(leaf_owner(other), None, "{other}");
    }
}

/// The writing part on this machine's real cgroup v2 hierarchy, as root (no
/// controller needed, nothing of the host's changed but directories made and
/// removed): the launcher moved out of the delegated cgroup, a leaf made and filled,
/// a process cloned straight into it, cgroups the sandbox made below it bounded
/// and removed with it; a dead launcher's leaf (with children) and launcher cgroup
/// removed, a live one's kept.
#[test]
fn a_leaf_is_made_entered_by_clone_and_removed() {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to make a cgroup");
        return;
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(m) = cgroup2_mounts(&mi)
        .into_iter()
        .find(|m| m.root == "/" && !m.ro)
    else {
        eprintln!("skipped: no read-write cgroup v2 mount");
        return;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = m
        .point
        .join(own_cgroup(&own).unwrap().trim_start_matches('/'));
    let parent = m.point.join(format!("sbx-unit-{}", std::process::id()));
    std::fs::create_dir(&parent).unwrap();
    // Whatever fails below, nothing is left on the host: this process back where it
    // was, what runs in the test's cgroups killed, the cgroups removed.
    struct Cleanup(PathBuf, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::write(self.1.join("cgroup.procs"), "0");
            kill_and_wait(&self.0, std::time::Duration::from_secs(2));
            let _ = remove_tree(&self.0);
        }
    }
    let _cleanup = Cleanup(parent.clone(), own.clone());
    let me = std::process::id();
    let leaf = leaf_name(me, crate::record::start_time(me as i32).unwrap());
    let plan = CgroupPlan {
        parent: parent.clone(),
        launcher: Some(launcher_name(&leaf)),
        leaf,
        enable: vec![],
        // Files that exist without any controller, and one that may not.
        writes: vec![
            ("cgroup.max.depth".into(), "2".into(), true),
            ("cgroup.max.descendants".into(), "2".into(), true),
            ("memory.swap.max".into(), "0".into(), false),
        ],
        request: Request::default(),
    };
    // A dead launcher's leaf with a child and its launcher cgroup (pid 1 never has
    // start time 1), and a live one's.
    let stale = parent.join("sbx-1-1");
    let stale_launcher = parent.join(launcher_name("sbx-1-1"));
    let live = parent.join(leaf_name(1, crate::record::start_time(1).unwrap()));
    for d in [stale.join("child"), stale_launcher.clone(), live.clone()] {
        std::fs::create_dir_all(&d).unwrap();
    }
    let made = create(&plan, 0);
    // Back where the test harness was, whatever happened.
    let back = || std::fs::write(own.join("cgroup.procs"), "0").unwrap();
    let leaf = made.unwrap_or_else(|e| {
        back();
        panic!("{e}")
    });
    let moved = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    back();
    assert!(
        moved.contains(&format!("/sbx-unit-{me}/{}.launcher", plan.leaf)),
        "the launcher moved out of the delegated cgroup: {moved}"
    );
    assert!(
        !stale.exists() && !stale_launcher.exists(),
        "a dead launcher's cgroups are removed"
    );
    assert!(live.exists(), "a live launcher's leaf stays");
    assert_eq!(
        std::fs::read_to_string(leaf.dir.join("cgroup.max.depth")).unwrap(),
        "2\n"
    );
    // The child only makes syscalls (the test harness has other threads, whose
    // locks a forked child must not need), into buffers made before the fork.
    let want = format!("/sbx-unit-{me}/{}", plan.leaf).into_bytes();
    let mut buf = [0u8; 4096];
    let pid = crate::sys::clone_fork_into(0, Some(std::os::fd::AsFd::as_fd(&leaf.fd))).unwrap();
    if pid == 0 {
        // SAFETY: raw syscalls on a NUL-terminated path and a stack buffer.
        unsafe {
            let fd = libc::open(c"/proc/self/cgroup".as_ptr(), libc::O_RDONLY);
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            let got = &buf[..n.max(0) as usize];
            let found = got.windows(want.len()).any(|w| w == want.as_slice());
            libc::_exit(if found { 0 } else { 1 });
        }
    }
    let (_, status) = crate::sys::waitpid(pid, 0).unwrap().unwrap();
    assert_eq!(
        crate::sys::exit_code(status),
        0,
        "the child was born in the leaf"
    );
    // Cgroups made below the leaf: bounded by cgroup.max.descendants.
    std::fs::create_dir_all(leaf.dir.join("a/b")).unwrap();
    let third = std::fs::create_dir(leaf.dir.join("c")).unwrap_err();
    assert_eq!(third.raw_os_error(), Some(libc::EAGAIN));
    // A second leaf of the same launcher is refused (the name is taken).
    assert!(create(&plan, 0).is_err());
    // Usage is read from the leaf (cpu.stat is there without any controller).
    assert!(usage(&leaf.dir).iter().any(|(k, _)| k == "cpu.usage_usec"));
    // A process still in the leaf when the sandbox ends (an --enter) is killed, and
    // the leaf removed all the same.
    let stays = crate::sys::clone_fork_into(0, Some(std::os::fd::AsFd::as_fd(&leaf.fd))).unwrap();
    if stays == 0 {
        // SAFETY: waiting for a signal in the child.
        unsafe {
            loop {
                libc::pause();
            }
        }
    }
    let dir = leaf.dir.clone();
    leaf.remove();
    assert!(
        !dir.exists(),
        "removed with what was made below it and what ran in it"
    );
    let (_, status) = crate::sys::waitpid(stays, 0).unwrap().unwrap();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    // A required value that cannot be written fails the launch and leaves no leaf
    // (memory.max: no memory controller here); an optional one is skipped.
    let mut bad = plan.clone();
    bad.leaf = "sbx-2-2".into();
    bad.launcher = None;
    bad.writes = vec![("memory.max".into(), "1".into(), true)];
    let e = create(&bad, 0)
        .err()
        .expect("a required write fails")
        .to_string();
    assert!(e.contains("memory.max"), "{e}");
    assert!(!parent.join("sbx-2-2").exists());
    // Another user's stale-looking leaf is not ours to remove.
    let theirs = parent.join("sbx-1-2");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(12345), None).unwrap();
    assert!(remove_stale(&parent, 0).is_empty());
    assert!(theirs.exists());
    for d in [
        theirs,
        live,
        parent.join(launcher_name(&plan.leaf)),
        parent.clone(),
    ] {
        std::fs::remove_dir(&d).unwrap();
    }
    assert!(!parent.exists());
}

#[test]
fn joining_a_leaf_not_named_after_the_live_launcher_is_refused() {
    let me = std::process::id();
    let plan = |leaf: &str| CgroupPlan {
        parent: "/nonexistent".into(),
        leaf: leaf.into(),
        launcher: None,
        enable: vec![],
        writes: vec![],
        request: Request::default(),
    };
    for leaf in ["sbx-1-1", "app.slice", &format!("sbx-{me}-1")] {
        let e = join(&plan(leaf), me as i32, 1).unwrap_err().to_string();
        assert!(e.contains("is not its launcher's"), "{leaf}: {e}");
    }
    // The right name, but a cgroup that does not hold the sandbox's PID 1.
    let start = crate::record::start_time(me as i32).unwrap();
    let e = join(&plan(&leaf_name(me, start)), me as i32, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not its launcher's"), "{e}");
}

#[test]
fn mountinfo_lines_short_or_escaped() {
    // Lines missing fields are skipped, never indexed past their end.
    for line in [
        "30 26 0:27 / /sys/fs/cgroup - cgroup2 cgroup2 rw\n",
        "30 26 0:27 / /sys/fs/cgroup rw - cgroup2\n",
        "- cgroup2 cgroup2 rw\n",
        "garbage\n",
    ] {
        assert!(cgroup2_mounts(line).is_empty(), "{line}");
    }
    // \ooo escapes (space, tab, newline, backslash, any byte); a truncated or
    // non-octal one stays as written.
    assert_eq!(unescape("a\\040b\\011c\\012d\\134e"), "a b\tc\nd\\e");
    assert_eq!(unescape("\\101\\102"), "AB");
    assert_eq!(unescape("\\040x"), " x");
    assert_eq!(unescape("ab\\04"), "ab\\04");
    assert_eq!(unescape("ab\\0"), "ab\\0");
    assert_eq!(unescape("\\089"), "\\089");
    assert_eq!(unescape("plain"), "plain");
    assert_eq!(
        cgroup2_points("30 26 0:27 / /mnt/c\\040g rw - cgroup2 cgroup2 rw\n"),
        vec![PathBuf::from("/mnt/c g")]
    );
}

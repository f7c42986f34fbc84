//! The default seccomp policy, seen from inside the sandbox as the test users: every
//! refused call gets EPERM, namespaces cannot be made, and ordinary programs still work.

mod common;

use common::*;

/// What the default policy must refuse, stated here (not read back from the plan):
/// (name, this architecture's number, from libc).
fn denied() -> Vec<(String, u64)> {
    [
        ("add_key", libc::SYS_add_key),
        ("keyctl", libc::SYS_keyctl),
        ("request_key", libc::SYS_request_key),
        ("bpf", libc::SYS_bpf),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("syslog", libc::SYS_syslog),
        ("acct", libc::SYS_acct),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("reboot", libc::SYS_reboot),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("adjtimex", libc::SYS_adjtimex),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fspick", libc::SYS_fspick),
        ("move_mount", libc::SYS_move_mount),
        ("open_tree", libc::SYS_open_tree),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("setns", libc::SYS_setns),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("quotactl", libc::SYS_quotactl),
        ("quotactl_fd", libc::SYS_quotactl_fd),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("vhangup", libc::SYS_vhangup),
        // Linux 6.15's other way to change the mount tree (x86_64 and the generic
        // table: 467); the old module calls (x86_64 174 and 178), ENOSYS since 2.6 but
        // still numbered.
        ("open_tree_attr", 467),
        ("create_module", 174),
        ("query_module", 178),
    ]
    .iter()
    .map(|(n, nr)| (n.to_string(), *nr as u64))
    .collect()
}

/// The plan's own list (a second line: it must name every call above).
fn planned(u: &User) -> Vec<(String, u64)> {
    let o = run(u, &["--dry-run", "true"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    plan["seccomp"]["deny"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_u64().unwrap()))
        .collect()
}

/// Call each syscall number with zero arguments and print "name errno" (0 = success).
fn probe(list: &[(String, u64)]) -> String {
    let calls: Vec<String> = list
        .iter()
        .map(|(n, nr)| format!("('{n}', {nr})"))
        .collect();
    format!(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         for name, nr in [{}]:\n    \
             r = libc.syscall(ctypes.c_long(nr), 0, 0, 0, 0, 0)\n    \
             print(name, ctypes.get_errno() if r < 0 else 0)\n",
        calls.join(", ")
    )
}

#[test]
fn every_refused_syscall_gets_eperm_and_the_filter_is_what_refuses_it() {
    for u in users() {
        let list = denied();
        let plan = planned(u);
        for call in &list {
            assert!(plan.contains(call), "the plan does not refuse {call:?}");
        }
        let script = probe(&list);
        let o = run(u, &["-q", "--", "python3", "-c", &script]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        for line in stdout(&o).lines() {
            assert!(
                line.ends_with(&format!(" {}", libc::EPERM)),
                "as {}: {line}",
                u.name
            );
        }
        assert_eq!(stdout(&o).lines().count(), list.len());
        // Control: without the filter, most of them fail for other reasons (or work).
        let fx = Fixture::new(u, "seccomp-off");
        let off = fx.file(
            "off.toml",
            "version = 1\ninclude = [\"minimal\"]\nseccomp = \"off\"\n",
            u,
        );
        let o = run(
            u,
            &[
                "-q",
                "--profile",
                off.to_str().unwrap(),
                "--",
                "python3",
                "-c",
                &script,
            ],
        );
        let other = stdout(&o)
            .lines()
            .filter(|l| !l.ends_with(&format!(" {}", libc::EPERM)))
            .count();
        assert!(
            other >= 15,
            "as {}: the control differs too little: {}",
            u.name,
            stdout(&o)
        );
    }
}

#[test]
fn namespaces_cannot_be_created_inside() {
    for u in users() {
        let out = sh(
            u,
            &[],
            "unshare -U true 2>/dev/null || echo userns-refused; unshare -n true 2>/dev/null || echo netns-refused; \
             python3 -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare(0x10000000) != 0)' || echo py-refused",
        );
        assert_eq!(
            out, "userns-refused\nnetns-refused\npy-refused\n",
            "as {}",
            u.name
        );
    }
}

#[test]
fn ordinary_programs_still_work() {
    for u in users() {
        let script = "set -e; bash -c 'echo $((6*7))'; printf 'b\\na\\n' | sort | tr -d '\\n'; echo; \
                      python3 -c 'import threading, subprocess, json; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join(); \
                      print(subprocess.run([\"echo\", \"sub\"], capture_output=True, text=True).stdout.strip())'; \
                      cd /tmp && printf '#include <stdio.h>\\nint main(void){puts(\"compiled\");return 0;}\\n' > h.c && \
                      if command -v gcc >/dev/null; then gcc -o h h.c && ./h; else echo compiled; fi";
        let out = sh(u, &[], script);
        assert_eq!(out, "42\nab\nthread\nsub\ncompiled\n", "as {}", u.name);
    }
}

#[test]
fn profiles_adjust_the_policy_by_syscall_name() {
    for u in users() {
        let fx = Fixture::new(u, "seccomp-lists");
        let p = fx.file(
            "lists.toml",
            "version = 1\ninclude = [\"minimal\"]\nseccomp_allow = [\"ptrace\", \"unshare\"]\nseccomp_deny = [\"getppid\"]\n",
            u,
        );
        let script = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                      print(libc.ptrace(0, 0, 0, 0), libc.getppid())\n\
                      print('unshared' if libc.unshare(0x10000000) == 0 else 'refused')";
        let o = run(
            u,
            &[
                "-q",
                "--profile",
                p.to_str().unwrap(),
                "--",
                "python3",
                "-c",
                script,
            ],
        );
        assert_eq!(
            stdout(&o),
            "0 -1\nunshared\n",
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        let bad = fx.file(
            "bad.toml",
            "version = 1\ninclude = [\"minimal\"]\nseccomp_allow = [\"ptrace\", \"ptrac\"]\n",
            u,
        );
        let o = run(u, &["--profile", bad.to_str().unwrap(), "true"]);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("bad.toml:3:") && stderr(&o).contains("ptrac"),
            "{}",
            stderr(&o)
        );
    }
}

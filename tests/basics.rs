//! The command line and exit statuses, run as the unprivileged test users.

mod common;

use common::*;

#[test]
fn exit_status_passes_through() {
    for u in users() {
        let o = run(u, &["--", "sh", "-c", "exit 7"]);
        assert_eq!(code(&o), 7, "as {}: {}", u.name, stderr(&o));
        let o = run(u, &["true"]);
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
    }
}

#[test]
fn death_by_signal_gives_128_plus_n() {
    for u in users() {
        let o = run(u, &["--", "sh", "-c", "kill -TERM $$"]);
        assert_eq!(code(&o), 128 + 15, "as {}: {}", u.name, stderr(&o));
        let o = run(u, &["--", "sh", "-c", "kill -KILL $$"]);
        assert_eq!(code(&o), 128 + 9, "as {}: {}", u.name, stderr(&o));
    }
}

#[test]
fn not_found_is_127_and_cannot_execute_is_126() {
    for u in users() {
        let o = run(u, &["no-such-command-sbx"]);
        assert_eq!(code(&o), 127, "as {}", u.name);
        assert!(stderr(&o).contains("no-such-command-sbx"), "{}", stderr(&o));
        let o = run(u, &["/no/such/path"]);
        assert_eq!(code(&o), 127, "as {}", u.name);
        // A file that exists but is not executable.
        let o = run(u, &["/etc/passwd"]);
        assert_eq!(code(&o), 126, "as {}: {}", u.name, stderr(&o));
        assert!(stderr(&o).contains("cannot execute"), "{}", stderr(&o));
        // A directory.
        let o = run(u, &["/usr"]);
        assert_eq!(code(&o), 126, "as {}: {}", u.name, stderr(&o));
    }
}

#[test]
fn everything_after_the_first_positional_belongs_to_the_command() {
    for u in users() {
        let o = run(u, &["echo", "--hostname", "x", "-v", "--", "--dry-run"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), "--hostname x -v -- --dry-run\n");
        let o = run(u, &["--", "--weird-name"]);
        assert_eq!(
            code(&o),
            127,
            "a command named --weird-name is looked up, not parsed"
        );
    }
}

#[test]
fn setup_errors_exit_125_and_name_the_cause() {
    for u in users() {
        let o = run(u, &["--ro-bind", "/no/such/source:/x", "true"]);
        assert_eq!(code(&o), 125);
        let e = stderr(&o);
        assert!(
            e.contains("--ro-bind") && e.contains("/no/such/source"),
            "{e}"
        );

        let o = run(u, &["--bind", "/usr:relative/dst", "true"]);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("not an absolute path"),
            "{}",
            stderr(&o)
        );

        let o = run(u, &["--tmpfs", "/a/../b", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains(".."), "{}", stderr(&o));

        let o = run(u, &["--net", "bogus", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--net"), "{}", stderr(&o));

        let o = run(u, &["--cap-add", "NOT_A_CAP", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("NOT_A_CAP"), "{}", stderr(&o));

        let o = run(u, &["-q", "--cwd", "/no/such/dir", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--cwd"), "{}", stderr(&o));
        // The command's process fails on its own, after PID 1 has started it: one
        // message, the cause, and no second one from PID 1 about the gate it held.
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

        let o = run(u, &["--setenv", "NOEQUALS", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--setenv"), "{}", stderr(&o));

        let o = run::<&str>(u, &[]);
        assert_eq!(code(&o), 125, "no command");
    }
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let u = &users()[0];
    let marker = format!("sbx-dry-run-{}", unique());
    let o = run(
        u,
        &[
            "--dry-run",
            "--tmpfs",
            "/scratch",
            "--",
            "sh",
            "-c",
            &format!("echo {marker}; exit 9"),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).lines().any(|l| l == marker), "the command ran");
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("plan is JSON");
    assert_eq!(plan["namespaces"][0], "user", "user namespace first");
    assert_eq!(plan["command"][0], "sh");
    let mounts = plan["mounts"].as_array().unwrap();
    let last = mounts.last().unwrap();
    assert_eq!(last["op"], "tmpfs");
    assert_eq!(last["dst"], "/scratch");
    assert_eq!(last["origin"], "--tmpfs /scratch");
    assert!(mounts
        .iter()
        .any(|m| m["op"] == "bind" && m["dst"] == "/usr" && m["access"] == "read-only"));
    let kind = &plan["ids"]["mapping"]["kind"];
    assert_eq!(
        kind,
        if u.subids.is_some() {
            "subordinate"
        } else {
            "single"
        }
    );
}

#[test]
fn verbose_traces_each_step_and_quiet_silences_notices() {
    for u in users() {
        let o = run(u, &["-v", "true"]);
        assert_eq!(code(&o), 0);
        let e = stderr(&o);
        for step in [
            "id maps",
            "namespaces created",
            "bind /usr",
            "proc /proc",
            "pivot_root",
        ] {
            assert!(e.contains(step), "as {}: -v lacks {step:?}:\n{e}", u.name);
        }
        let o = run(u, &["-q", "true"]);
        assert_eq!(
            stderr(&o),
            "",
            "as {}: -q must print nothing on success",
            u.name
        );
    }
}

#[test]
fn help_and_version() {
    let u = &users()[0];
    let o = run(u, &["--help"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("Usage: sbx [OPTIONS] [--] COMMAND [ARG]..."),
        "{}",
        stdout(&o)
    );
    let o = run(u, &["--version"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("sbx "));
}

/// Every long option of `--help` is in man/sbx.1 and every option the man page
/// documents exists: the page cannot drift from the binary.
#[test]
fn man_page_matches_help() {
    let u = &users()[0];
    let help = stdout(&run(u, &["--help"]));
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/sbx.1")).unwrap();
    let opts = |text: &str, dash: &str| -> std::collections::BTreeSet<String> {
        let mut s = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find(dash) {
            rest = &rest[i + dash.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let name = name.replace("\\-", "-");
            if name.len() > 1 && name.chars().next().unwrap().is_ascii_alphabetic() {
                s.insert(name);
            }
        }
        s
    };
    let in_help = opts(&help, "--");
    // In roff a dash is written `\-`: the man page spells options `\-\-name`.
    let in_man: std::collections::BTreeSet<String> = opts(&man.replace("\\-", "-"), "--");
    let missing: Vec<_> = in_help.difference(&in_man).collect();
    assert!(
        missing.is_empty(),
        "options in --help but not in man/sbx.1: {missing:?}"
    );
    let extra: Vec<_> = in_man.difference(&in_help).collect();
    assert!(
        extra.is_empty(),
        "options in man/sbx.1 that --help does not know: {extra:?}"
    );
}

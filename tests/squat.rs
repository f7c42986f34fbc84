//! No other local user can stop sbx: a squatted records directory (another user's
//! directory or symlink at /tmp/sbx-UID, where sbx keeps its records when
//! XDG_RUNTIME_DIR is unset) costs the records, never the launch.
//!
//! A test binary of its own: it replaces the test user's records directory, which
//! any other sbx run as that user would create or use meanwhile (cargo runs test
//! binaries one at a time).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

#[test]
fn another_user_cannot_stop_your_sbx() {
    if !is_root() {
        skip(
            Lacking::Setup,
            "squatting another user's /tmp/sbx-UID needs root to set up",
        );
        return;
    }
    let (victim, other) = (&users()[0], &users()[1]);
    let squat = std::path::PathBuf::from(format!("/tmp/sbx-{}", victim.uid));
    let _ = std::fs::remove_dir(&squat); // the victim's own, empty, if left
    for kind in ["dir", "symlink"] {
        if kind == "dir" {
            std::fs::create_dir(&squat).unwrap();
            std::fs::set_permissions(&squat, std::fs::Permissions::from_mode(0o777)).unwrap();
        } else {
            std::os::unix::fs::symlink("/tmp", &squat).unwrap();
        }
        std::os::unix::fs::lchown(&squat, Some(other.uid), Some(other.gid)).unwrap();
        let o = run(victim, &["--", "echo", "launched"]);
        let list = run(victim, &["--list"]);
        if kind == "dir" {
            std::fs::remove_dir(&squat).unwrap();
        } else {
            std::fs::remove_file(&squat).unwrap();
        }
        assert_eq!(code(&o), 0, "{kind}: {}", stderr(&o));
        assert_eq!(stdout(&o), "launched\n");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("sandbox records: {}", squat.display())),
            "{kind}: {err}"
        );
        assert_eq!(
            err.matches("sandbox records").count(),
            1,
            "said once: {err}"
        );
        assert_eq!(code(&list), 0, "{}", stderr(&list));
        assert!(
            stderr(&list).contains(&squat.display().to_string()),
            "--list says what it could not read: {}",
            stderr(&list)
        );
    }
}

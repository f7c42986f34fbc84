//! `--profile ci` on a simulated GitHub Actions runner: a runner user whose home
//! holds the job's toolchain (in ~/.local/bin, as pipx or a setup action leaves it),
//! the provider's variables and step files, and a real C project built and tested
//! with make inside the sandbox.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const MAKEFILE: &str = "check: hello\n\t./hello | grep -q 'hello from v1.2'\n\
hello: hello.c version.h\n\tcc -O1 -o hello hello.c\n\
version.h:\n\tgen-version > version.h\n";
const HELLO: &str = "#include <stdio.h>\n#include \"version.h\"\n\
int main(void) { printf(\"hello from %s\\n\", VERSION); return 0; }\n";

#[test]
fn a_github_actions_job_builds_tests_and_reports_under_ci() {
    for u in users() {
        let fx = Fixture::new(u, "runner");
        let home = fx.path.join("home");
        // The toolchain the job installed under $HOME.
        let tool = fx.file(
            "home/.local/bin/gen-version",
            "#!/bin/sh\necho '#define VERSION \"v1.2\"'\n",
            u,
        );
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A secret of the runner's home, and the checked-out workspace.
        fx.file("home/.ssh/id_ed25519", "RUNNER KEY", u);
        let ws = home.join("work/proj/proj");
        fx.file("home/work/proj/proj/Makefile", MAKEFILE, u);
        fx.file("home/work/proj/proj/hello.c", HELLO, u);
        let cmds = home.join("work/_temp/_runner_file_commands");
        let steps: Vec<(&str, std::path::PathBuf)> = [
            "GITHUB_OUTPUT",
            "GITHUB_ENV",
            "GITHUB_PATH",
            "GITHUB_STEP_SUMMARY",
        ]
        .iter()
        .map(|k| {
            (
                *k,
                fx.file(
                    &format!("home/work/_temp/_runner_file_commands/{}", k.to_lowercase()),
                    "",
                    u,
                ),
            )
        })
        .collect();
        let _ = cmds;
        for d in [
            fx.path.clone(),
            home.clone(),
            home.join("work"),
            home.join("work/proj"),
            home.join(".local"),
        ] {
            fx.chown(&d, u);
        }
        let job = "make -s check && echo \"result=pass\" >> \"$GITHUB_OUTPUT\" && \
                   echo '### built and tested' >> \"$GITHUB_STEP_SUMMARY\" && \
                   echo \"CI=$CI ACTIONS=$GITHUB_ACTIONS OS=$RUNNER_OS TOKEN=${GITHUB_TOKEN:-none} JOBTOKEN=${CI_JOB_TOKEN:-none}\"; \
                   cat ~/.ssh/id_ed25519 2>/dev/null || echo no-key";
        let run_job = |job: &str| {
            let mut c = sbx_cmd(u, ["-q", "--profile", "ci", "--", "sh", "-c", job]);
            c.env("HOME", &home)
                .env(
                    "PATH",
                    format!("{}/.local/bin:/usr/bin:/bin", home.display()),
                )
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", &ws)
                .env("RUNNER_OS", "Linux")
                .env("GITHUB_TOKEN", "ghs_secret_value")
                .env("CI_JOB_TOKEN", "glcbt_secret")
                .current_dir(&ws);
            for (k, p) in &steps {
                c.env(k, p);
            }
            output(c)
        };
        let o = run_job(job);
        assert_eq!(code(&o), 0, "as {}: {}{}", u.name, stdout(&o), stderr(&o));
        assert_eq!(
            stdout(&o),
            "CI=true ACTIONS=true OS=Linux TOKEN=none JOBTOKEN=none\nno-key\n",
            "as {}",
            u.name
        );
        let read = |k: &str| {
            std::fs::read_to_string(&steps.iter().find(|(n, _)| *n == k).unwrap().1).unwrap()
        };
        assert_eq!(read("GITHUB_OUTPUT"), "result=pass\n");
        assert_eq!(read("GITHUB_STEP_SUMMARY"), "### built and tested\n");
        assert!(
            ws.join("hello").exists(),
            "the build's output is in the workspace"
        );
        // A failing test fails the job with make's status.
        std::fs::write(
            ws.join("hello.c"),
            HELLO.replace("hello from", "goodbye from"),
        )
        .unwrap();
        let o = run_job("rm -f hello; make -s check");
        assert_eq!(code(&o), 2, "as {}: {}", u.name, stderr(&o));
    }
}

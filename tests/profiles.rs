//! Profiles end to end: the shipped set run real commands as the unprivileged test
//! users against a home made for the test (HOME points at a fixture), and the
//! profile tools.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A fake home for `u` with a project directory, planted secrets and a toolchain.
struct Home {
    fx: Fixture,
    home: PathBuf,
    project: PathBuf,
}

impl Home {
    fn new(u: &User, tag: &str) -> Home {
        let fx = Fixture::new(u, tag);
        let home = fx.path.join("home");
        fx.file("home/.ssh/id_ed25519", "PRIVATE KEY", u);
        fx.file("home/.netrc", "machine x password hunter2", u);
        fx.file("home/Documents/letter.txt", "dear", u);
        fx.file("home/notes.txt", "notes", u);
        fx.file("home/.cargo/registry/index.txt", "cache", u);
        fx.file("home/.config/sbx/profiles/.keep", "", u);
        fx.file("work/proj/src.txt", "source", u);
        let project = fx.path.join("work/proj");
        Home { fx, home, project }
    }

    fn cmd(&self, u: &User, args: &[&str]) -> Command {
        let mut c = sbx_cmd(u, args);
        c.env("HOME", &self.home).current_dir(&self.project);
        c
    }

    fn sh(&self, u: &User, profile: &str, script: &str) -> Output {
        output(self.cmd(u, &["-q", "--profile", profile, "--", "sh", "-c", script]))
    }
}

fn ok(o: &Output, what: &str) -> String {
    assert_eq!(code(o), 0, "{what}: {}\n{}", stdout(o), stderr(o));
    stdout(o)
}

#[test]
fn minimal_sees_no_home_and_no_network() {
    for u in users() {
        let h = Home::new(u, "minimal");
        let out = ok(
            &h.sh(u, "minimal", "test -e \"$HOME\" && echo home || echo no-home; ls /; cat /proc/net/dev | tail -n +3 | cut -d: -f1; touch /tmp/x && echo tmp"),
            "minimal",
        );
        assert!(out.starts_with("no-home\n"), "as {}: {out}", u.name);
        assert!(
            !out.contains("work"),
            "nothing of the host beyond the system: {out}"
        );
        assert!(out.ends_with("    lo\ntmp\n"), "as {}: {out}", u.name);
    }
}

#[test]
fn default_profile_empty_home_readonly_cwd() {
    for u in users() {
        let h = Home::new(u, "default");
        let out = ok(
            &h.sh(
                u,
                "default",
                "ls -A \"$HOME\"; echo --; pwd; cat src.txt; echo; touch new 2>/dev/null || echo cwd-ro; touch \"$HOME/h\" && echo home-rw",
            ),
            "default",
        );
        assert_eq!(
            out,
            format!("--\n{}\nsource\ncwd-ro\nhome-rw\n", h.project.display()),
            "as {}",
            u.name
        );
        // From $HOME itself the current directory is not bound, and sbx says so.
        let mut c = sbx_cmd(u, ["--", "ls", "-A"]);
        c.env("HOME", &h.home).current_dir(&h.home);
        let o = output(c);
        assert_eq!(stdout(&o), "", "as {}: home stays empty", u.name);
        assert!(stderr(&o).contains("not binding"), "{}", stderr(&o));
    }
}

#[test]
fn shell_profile_reads_home_masks_secrets_and_writes_cwd() {
    for u in users() {
        let h = Home::new(u, "shell");
        let out = ok(
            &h.sh(
                u,
                "shell",
                "cat ~/notes.txt; echo; ls -A ~/.ssh | wc -l; wc -c < ~/.netrc; touch ~/x 2>/dev/null || echo home-ro; \
                 echo out > made.txt && echo cwd-rw; ls ~/.config/sbx | wc -l",
            ),
            "shell",
        );
        assert_eq!(out, "notes\n0\n0\nhome-ro\ncwd-rw\n0\n", "as {}", u.name);
        assert_eq!(
            std::fs::read_to_string(h.project.join("made.txt")).unwrap(),
            "out\n"
        );
        assert!(
            h.home.join(".ssh/id_ed25519").exists(),
            "the host's files are untouched"
        );
    }
}

#[test]
fn dev_profile_writable_project_and_caches_nothing_else_of_home() {
    for u in users() {
        let h = Home::new(u, "dev");
        let out = ok(
            &h.sh(
                u,
                "dev",
                "echo built > out.bin && echo cwd-rw; cat ~/.cargo/registry/index.txt; echo; echo more > ~/.cargo/registry/new && echo cache-rw; \
                 test -e ~/notes.txt && echo notes-visible || echo notes-hidden; test -e ~/Documents && echo docs || echo no-docs",
            ),
            "dev",
        );
        assert_eq!(
            out, "cwd-rw\ncache\ncache-rw\nnotes-hidden\nno-docs\n",
            "as {}",
            u.name
        );
        // Crate sources are trusted by the host's cargo without a new check: the
        // sandbox's writes there are its own, discarded at its end.
        assert!(
            !h.home.join(".cargo/registry/new").exists(),
            "as {}: a write to the crate cache reached the host",
            u.name
        );
    }
}

#[test]
fn ci_profile_maps_subordinate_ids_where_it_can_and_requires_them_on_demand() {
    for u in users() {
        let h = Home::new(u, "ci");
        let o = h.sh(
            u,
            "ci",
            "wc -l < /proc/self/uid_map; echo ok > artifact; test -e ~/notes.txt || echo no-home",
        );
        // Hosted runners and containers have no subordinate ids: ci works there too.
        let lines = if u.subids.is_some() { "2" } else { "1" };
        assert_eq!(ok(&o, "ci"), format!("{lines}\nno-home\n"), "as {}", u.name);
        assert!(h.project.join("artifact").exists());
        // --ids subordinate requires them: exit 125 naming the fix, nothing run.
        std::fs::remove_file(h.project.join("artifact")).unwrap();
        let o = output(h.cmd(
            u,
            &[
                "-q",
                "--profile",
                "ci",
                "--ids",
                "subordinate",
                "--",
                "sh",
                "-c",
                "echo ok > artifact",
            ],
        ));
        match u.subids {
            Some(_) => assert_eq!(code(&o), 0, "{}", stderr(&o)),
            None => {
                assert_eq!(code(&o), 125, "as {}: --ids subordinate", u.name);
                assert!(
                    stderr(&o).contains("usermod") && stderr(&o).contains("--ids"),
                    "{}",
                    stderr(&o)
                );
                assert!(!h.project.join("artifact").exists(), "nothing ran");
            }
        }
    }
}

#[test]
fn untrusted_profile_is_small_and_limited() {
    for u in users() {
        let h = Home::new(u, "untrusted");
        let out = ok(
            &h.sh(
                u,
                "untrusted",
                "ulimit -n; ulimit -c; df -k /tmp | tail -1 | awk '{print $2}'; wc -l < /proc/self/uid_map; ls -A ~ | wc -l; \
                 head -c 70000000 /dev/zero > /tmp/big 2>/dev/null || echo too-big",
            ),
            "untrusted",
        );
        assert_eq!(out, "256\n0\n65536\n1\n0\ntoo-big\n", "as {}", u.name);
    }
}

#[test]
fn bad_profiles_run_nothing_and_say_where() {
    for u in users() {
        let h = Home::new(u, "bad");
        let bad = h.fx.file(
            "bad.toml",
            "version = 1\n\n[[mount]]\ntype = \"ro-bind\"\nsrc = \"/no/such/dir\"\n",
            u,
        );
        let marker = h.fx.path.join("ran");
        let o = output(h.cmd(
            u,
            &[
                "--profile",
                bad.to_str().unwrap(),
                "--",
                "touch",
                marker.to_str().unwrap(),
            ],
        ));
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("bad.toml:3:1") && stderr(&o).contains("/no/such/dir"),
            "{}",
            stderr(&o)
        );
        assert!(!marker.exists());
        let o = output(h.cmd(u, &["--profile", "no-such-profile", "true"]));
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("no-such-profile"), "{}", stderr(&o));
    }
}

#[test]
fn user_profiles_shadow_and_extend_the_builtins() {
    let u = &users()[0];
    let h = Home::new(u, "user-profiles");
    let dir = h.home.join(".config/sbx/profiles");
    let p = h.fx.file(
        "home/.config/sbx/profiles/minimal.toml",
        "version = 1\ndescription = \"my minimal\"\ninclude = [\"builtin:minimal\"]\nhostname = \"mine\"\n",
        u,
    );
    assert!(p.starts_with(&dir));
    let o = output(h.cmd(u, &["--profiles", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&ok(&o, "--profiles")).unwrap();
    let mins: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "minimal")
        .collect();
    assert_eq!(mins.len(), 2);
    assert_eq!(mins[0]["source"], "user");
    assert_eq!(mins[1]["shadowed"], true);
    let o = h.sh(u, "minimal", "hostname");
    assert_eq!(ok(&o, "user minimal"), "mine\n");
    let o = output(h.cmd(u, &["--profiles"]));
    assert!(stdout(&o).contains("my minimal"), "{}", stdout(&o));
}

#[test]
fn print_profile_output_is_an_equivalent_profile() {
    let u = &users()[0];
    let h = Home::new(u, "print");
    for name in ["default", "shell", "dev", "untrusted"] {
        let printed = ok(
            &output(h.cmd(u, &["--print-profile", name])),
            "--print-profile",
        );
        assert!(
            !printed.contains("include"),
            "includes are merged: {printed}"
        );
        assert!(!printed.contains("${"), "variables are substituted");
        let file = h.fx.file(&format!("printed/{name}.toml"), &printed, u);
        let plan = |spec: &str| -> serde_json::Value {
            let o = output(h.cmd(u, &["--dry-run", "--profile", spec, "true"]));
            let mut v: serde_json::Value = serde_json::from_str(&ok(&o, spec)).unwrap();
            for m in v["mounts"].as_array_mut().unwrap() {
                m.as_object_mut().unwrap().remove("origin");
            }
            v["mounts"].take()
        };
        assert_eq!(plan(file.to_str().unwrap()), plan(name), "profile {name}");
        let json = ok(
            &output(h.cmd(u, &["--print-profile", name, "--json"])),
            "json",
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["version"], 1);
    }
}

#[test]
fn check_profile_reports_every_error() {
    let u = &users()[0];
    let h = Home::new(u, "check");
    let f = h.fx.file(
        "many.toml",
        "version = 1\n\
         [[mount]]\ntype = \"tmpfs\"\ndst = \"/t\"\nsize = \"lots\"\n\
         [[mount]]\ntype = \"dir\"\ndst = \"relative\"\n\
         [[mount]]\ntype = \"ro-bind\"\nsrc = \"${NOPE}/x\"\n\
         [[mount]]\ntype = \"symlink\"\ndst = \"/l\"\n\
         [[mount]]\ntype = \"dir\"\ndst = \"/a/../b\"\n\
         [[mount]]\ntype = \"tmpfs\"\ndst = \"/t2\"\nsize = 99999999999999999\n\
         [[mount]]\ntype = \"proc\"\nsize = \"1M\"\n",
        u,
    );
    let o = output(h.cmd(u, &["--check-profile", f.to_str().unwrap()]));
    assert_eq!(code(&o), 125);
    let e = stderr(&o);
    assert!(e.contains("7 error(s)"), "{e}");
    for (line, what) in [
        (2, "size \"lots\""),
        (6, "not an absolute path"),
        (9, "unknown variable ${NOPE}"),
        (12, "`target` is required"),
        (15, "`..`"),
        (18, "out of range"),
        (22, "`size` does not apply"),
    ] {
        assert!(
            e.contains(&format!("many.toml:{line}:1")),
            "line {line} in {e}"
        );
        assert!(e.contains(what), "{what} in {e}");
    }
    let good =
        h.fx.file("good.toml", "version = 1\ninclude = [\"minimal\"]\n", u);
    let o = output(h.cmd(u, &["--check-profile", good.to_str().unwrap()]));
    assert!(ok(&o, "good").contains("OK"));
}

/// No profile and no option can give the sandbox write access to a profile directory.
#[test]
fn profile_directories_are_never_writable_inside() {
    for u in users() {
        let h = Home::new(u, "trust");
        let config = h.home.join(".config");
        let bind = format!("{}", config.display());
        // A writable bind from above the profile directory, with nothing masking it.
        let o = output(h.cmd(u, &["--profile", "minimal", "--bind", &bind, "true"]));
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stderr(&o));
        assert!(stderr(&o).contains("profile directory"), "{}", stderr(&o));
        // ...or from below it.
        let inner = config.join("sbx/profiles");
        let o = output(h.cmd(
            u,
            &[
                "--profile",
                "minimal",
                "--bind",
                inner.to_str().unwrap(),
                "true",
            ],
        ));
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stderr(&o));
        // A profile that tries it from a writable current directory.
        let mut c = sbx_cmd(u, ["-q", "--profile", "shell", "true"]);
        c.env("HOME", &h.home).current_dir(&config);
        let o = output(c);
        // ~/.config/sbx exists, so home-masks covers it: allowed, and masked.
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                "shell",
                "--",
                "sh",
                "-c",
                // Masked: an empty read-only directory, so profiles/ is not there.
                "touch sbx/profiles/evil.toml 2>&1 | grep -c 'No such file or directory'; ls -A sbx | wc -l",
            ],
        );
        c.env("HOME", &h.home).current_dir(&config);
        assert_eq!(
            stdout(&output(c)),
            "1\n0\n",
            "as {}: ~/.config/sbx is not masked",
            u.name
        );
        assert!(!config.join("sbx/profiles/evil.toml").exists());
        // Read-only binds are fine.
        let ro = format!("{}", config.display());
        let o = output(h.cmd(u, &["--profile", "minimal", "--ro-bind", &ro, "true"]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
}

/// Every key the schema accepts is documented in man/sbx-profile.5, and the man
/// page's example is a valid profile.
#[test]
fn profile_man_page_documents_every_key() {
    let u = &users()[0];
    let h = Home::new(u, "man");
    let man =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/sbx-profile.5")).unwrap();
    // serde lists a table's keys when it meets an unknown one: ask each table.
    let probes = [
        "version = 1\nzz_unknown = 1\n",
        "version = 1\n[[mount]]\ntype = \"dir\"\nzz_unknown = 1\n",
        "version = 1\n[env]\nzz_unknown = 1\n",
        "version = 1\n[rlimits]\nzz_unknown = 1\n",
    ];
    let mut keys = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let f = h.fx.file(&format!("probe{i}.toml"), probe, u);
        let e = stderr(&output(h.cmd(u, &["--check-profile", f.to_str().unwrap()])));
        let expected = e
            .split("expected one of")
            .nth(1)
            .unwrap_or_else(|| panic!("{e}"));
        keys.extend(expected.split('`').skip(1).step_by(2).map(str::to_string));
    }
    assert!(keys.len() > 25, "{keys:?}");
    let text = man
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "");
    for k in &keys {
        let documented = text.lines().any(|l| {
            l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .any(|w| w == k)
        });
        assert!(documented, "profile key `{k}` is not in man/sbx-profile.5");
    }
    // The EXAMPLE section, unescaped, checks clean.
    let ex = man.split(".SH EXAMPLE").nth(1).unwrap();
    let ex = ex
        .split(".EX\n")
        .nth(1)
        .unwrap()
        .split(".EE")
        .next()
        .unwrap()
        .replace("\\e", "\\");
    let f = h.fx.file("example.toml", &ex, u);
    let o = output(h.cmd(u, &["--check-profile", f.to_str().unwrap()]));
    assert_eq!(code(&o), 0, "the man page example: {}", stderr(&o));
    let _ = Path::new(&f);
}

/// The other entry types, env and rlimits from a profile of the test's own.
#[test]
fn custom_profile_entries_take_effect() {
    for u in users() {
        let h = Home::new(u, "custom");
        h.fx.file("lower/orig.txt", "original", u);
        let lower = h.fx.path.join("lower");
        let prof = h.fx.file(
            "profiles/custom.toml",
            &format!(
                "version = 1\ninclude = [\"minimal\"]\nhostname = \"custom\"\n\
                 [[mount]]\ntype = \"dir\"\ndst = \"/run/made/deep\"\nmode = \"0700\"\n\
                 [[mount]]\ntype = \"file\"\ndst = \"/run/conf\"\ncontent = \"key = 1\\n\"\nmode = \"0444\"\n\
                 [[mount]]\ntype = \"symlink\"\ntarget = \"/run/conf\"\ndst = \"/run/link\"\n\
                 [[mount]]\ntype = \"mqueue\"\n\
                 [[mount]]\ntype = \"tmp-overlay\"\nsrc = \"{}\"\ndst = \"/data\"\nsize = \"8M\"\n\
                 [[mount]]\ntype = \"ro-bind\"\nsrc = \"/no/such/thing\"\noptional = true\n\
                 [env]\nset = {{ GREETING = \"hi\" }}\nunset = [\"LANG\"]\nkeep = [\"KEEP_ME\"]\n\
                 [rlimits]\nnofile = 100\n",
                lower.display()
            ),
            u,
        );
        let mut c = h.cmd(
            u,
            &[
                "-q",
                "--profile",
                prof.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "hostname; stat -c %a /run/made/deep; cat /run/link; stat -c %a /run/conf; \
                 grep -c mqueue /proc/self/mountinfo; cat /data/orig.txt; echo; echo changed > /data/orig.txt; echo new > /data/new.txt; \
                 cat /data/orig.txt /data/new.txt; echo $GREETING ${LANG:-nolang} $KEEP_ME; ulimit -n",
            ],
        );
        c.env("KEEP_ME", "kept").env("LANG", "C.UTF-8");
        let out = ok(&output(c), "custom profile");
        assert_eq!(
            out,
            format!("custom\n700\nkey = 1\n444\n1\noriginal\nchanged\nnew\nhi nolang kept\n100\n"),
            "as {}",
            u.name
        );
        // The overlay's writes vanished with the sandbox.
        assert_eq!(
            std::fs::read_to_string(lower.join("orig.txt")).unwrap(),
            "original"
        );
        assert!(!lower.join("new.txt").exists());
    }
}

/// Symlinks in $HOME or in the profile directory's path (stow-managed dotfiles, a
/// /home -> /var/home link) do not get a profile directory or the whole home bound
/// writable.
#[test]
fn symlinked_config_and_home_do_not_weaken_the_rules() {
    for u in users() {
        let h = Home::new(u, "symlinks");
        // ~/.config -> dotfiles/config, and `dev` run from ~/dotfiles.
        std::fs::create_dir_all(h.home.join("dotfiles")).unwrap();
        h.fx.chown(&h.home.join("dotfiles"), u);
        std::fs::rename(h.home.join(".config"), h.home.join("dotfiles/config")).unwrap();
        std::os::unix::fs::symlink("dotfiles/config", h.home.join(".config")).unwrap();
        let mut c = sbx_cmd(
            u,
            [
                "--profile",
                "dev",
                "--",
                "touch",
                "config/sbx/profiles/default.toml",
            ],
        );
        c.env("HOME", &h.home).current_dir(h.home.join("dotfiles"));
        let o = output(c);
        // The ~/.config/sbx mask follows the bind to the real directory, but the
        // sandbox could rename ~/dotfiles/config (the mask moves along) and make a
        // new config/sbx/profiles: refused.
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "could rename {}",
                h.home.join("dotfiles/config").display()
            )),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        assert!(!h
            .home
            .join("dotfiles/config/sbx/profiles/default.toml")
            .exists());

        // HOME reached through a symlink, `dev` run from the real home: not bound.
        let link = h.fx.path.join("homelink");
        std::os::unix::fs::symlink(&h.home, &link).unwrap();
        let mut c = sbx_cmd(
            u,
            [
                "--profile",
                "dev",
                "--",
                "sh",
                "-c",
                "test -e notes.txt && echo bound || echo not-bound",
            ],
        );
        c.env("HOME", &link).current_dir(&h.home);
        let o = output(c);
        assert_eq!(stdout(&o), "not-bound\n", "as {}: {}", u.name, stderr(&o));
        assert!(stderr(&o).contains("not binding"), "{}", stderr(&o));
    }
}

/// Dotfile managers put symlinks everywhere: none of them may open a way to the
/// profiles, or past a mask.
#[test]
fn symlinked_profile_dirs_files_and_relocated_config_stay_protected() {
    for u in users() {
        // ~/.config/sbx is a symlink into dotfiles; `shell` run from ~/.config.
        let h = Home::new(u, "stow");
        std::fs::create_dir_all(h.home.join("dotfiles")).unwrap();
        h.fx.chown(&h.home.join("dotfiles"), u);
        std::fs::rename(h.home.join(".config/sbx"), h.home.join("dotfiles/sbx")).unwrap();
        std::os::unix::fs::symlink("../dotfiles/sbx", h.home.join(".config/sbx")).unwrap();
        let mut c = sbx_cmd(u, ["--profile", "shell", "--", "rm", "-f", "sbx"]);
        c.env("HOME", &h.home).current_dir(h.home.join(".config"));
        let o = output(c);
        assert_eq!(
            code(&o),
            125,
            "as {}: a mask over a symlink does not protect: {}",
            u.name,
            stderr(&o)
        );
        assert!(std::fs::symlink_metadata(h.home.join(".config/sbx")).is_ok());

        // A user profile that is a symlink into the directory the sandbox may write.
        let h = Home::new(u, "stow-file");
        h.fx.file(
            "home/dotfiles/sbx/dev.toml",
            "version = 1\ninclude = [\"builtin:dev\"]\n",
            u,
        );
        std::os::unix::fs::symlink(
            h.home.join("dotfiles/sbx/dev.toml"),
            h.home.join(".config/sbx/profiles/dev.toml"),
        )
        .unwrap();
        let mut c = sbx_cmd(
            u,
            [
                "--profile",
                "dev",
                "--",
                "sh",
                "-c",
                "echo pwned > sbx/dev.toml",
            ],
        );
        c.env("HOME", &h.home).current_dir(h.home.join("dotfiles"));
        let o = output(c);
        assert_eq!(
            code(&o),
            125,
            "as {}: the profile's real directory is writable: {}",
            u.name,
            stderr(&o)
        );
        assert!(
            !std::fs::read_to_string(h.home.join("dotfiles/sbx/dev.toml"))
                .unwrap()
                .contains("pwned")
        );

        // XDG_CONFIG_HOME relocated: ~/.config/sbx/profiles is protected all the same.
        let h = Home::new(u, "xdg");
        std::fs::remove_dir_all(h.home.join(".config/sbx")).unwrap();
        let mut c = sbx_cmd(
            u,
            ["--profile", "shell", "--", "mkdir", "-p", "sbx/profiles"],
        );
        c.env("HOME", &h.home)
            .env("XDG_CONFIG_HOME", h.home.join(".cfg"))
            .current_dir(h.home.join(".config"));
        assert_eq!(code(&output(c)), 125, "as {}", u.name);
        assert!(!h.home.join(".config/sbx").exists());
    }
}

/// With $HOME reached through a symlink, a current directory inside a secret (bound
/// at its resolved path) is masked too.
#[test]
fn masks_follow_the_current_directory_through_a_symlinked_home() {
    for u in users() {
        let h = Home::new(u, "home-link");
        let link = h.fx.path.join("homelink");
        std::os::unix::fs::symlink(&h.home, &link).unwrap();
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                "shell",
                "--",
                "sh",
                "-c",
                "ls -A . | wc -l; cat id_ed25519 2>/dev/null || echo hidden",
            ],
        );
        c.env("HOME", &link).current_dir(h.home.join(".ssh"));
        let o = output(c);
        assert_eq!(stdout(&o), "0\nhidden\n", "as {}: {}", u.name, stderr(&o));
    }
}

/// Every secret the `home-masks` abstraction must hide, stated here (not read from
/// the binary): (path under $HOME, is a directory).
const SECRETS: &[(&str, bool)] = &[
    (".ssh", true),
    (".gnupg", true),
    (".pki", true),
    (".mozilla", true),
    (".config/mozilla", true),
    (".config/chromium", true),
    (".config/google-chrome", true),
    (".config/BraveSoftware", true),
    (".config/microsoft-edge", true),
    (".thunderbird", true),
    (".bash_history", false),
    (".zsh_history", false),
    (".local/share/fish/fish_history", false),
    (".python_history", false),
    (".node_repl_history", false),
    (".psql_history", false),
    (".mysql_history", false),
    (".password-store", true),
    (".local/share/keyrings", true),
    (".local/share/kwalletd", true),
    (".aws", true),
    (".azure", true),
    (".config/gcloud", true),
    (".kube", true),
    (".docker", true),
    (".config/gh", true),
    (".config/glab-cli", true),
    (".netrc", false),
    (".git-credentials", false),
    (".config/git/credentials", false),
    (".npmrc", false),
    (".pypirc", false),
    (".config/pip/pip.conf", false),
    (".cargo/credentials.toml", false),
    (".cargo/credentials", false),
    (".terraform.d/credentials.tfrc.json", false),
    (".terraformrc", false),
    (".vault-token", false),
    (".pgpass", false),
    (".config/sbx", true),
];

#[test]
fn secrets_are_hidden_under_shell_dev_and_default() {
    for u in users() {
        let fx = Fixture::new(u, "secrets");
        let home = fx.path.join("home");
        for (i, (p, dir)) in SECRETS.iter().enumerate() {
            let file = if *dir {
                format!("home/{p}/secret")
            } else {
                format!("home/{p}")
            };
            fx.file(&file, &format!("SECRET-{i}"), u);
        }
        fx.file("home/notes.txt", "visible-notes", u);
        fx.file("home/.config/app/settings", "visible-settings", u);
        fx.file("home/.local/share/app/data", "visible-data", u);
        fx.file("home/.cargo/config.toml", "visible-cargo", u);
        let mut todo = vec![fx.path.clone()];
        while let Some(d) = todo.pop() {
            fx.chown(&d, u);
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                fx.chown(&e.path(), u);
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
            }
        }
        // Read every secret by every path the sandbox could have to it.
        let read_all = SECRETS
            .iter()
            .map(|(p, dir)| {
                if *dir {
                    format!("cat ~/{p}/secret 2>/dev/null; ls -A ~/{p} 2>/dev/null")
                } else {
                    format!("cat ~/{p} 2>/dev/null")
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        // shell: home read-only, every secret hidden, the rest readable.
        let mut c = sbx_cmd(u, ["-q", "--profile", "shell", "--", "sh", "-c", &format!("{read_all}; cat ~/notes.txt ~/.config/app/settings ~/.local/share/app/data ~/.cargo/config.toml")]);
        c.env("HOME", &home).current_dir(&home);
        let out = ok(&output(c), "shell");
        assert!(!out.contains("SECRET-"), "as {}: shell shows {out}", u.name);
        assert_eq!(
            out, "visible-notesvisible-settingsvisible-datavisible-cargo",
            "as {}",
            u.name
        );
        // dev and default: a secret reached through the current directory's grant
        // (the user works in ~/.config, ~/.local/share or ~/.cargo) is hidden there.
        for profile in ["dev", "default"] {
            for cwd in [".config", ".local/share", ".cargo"] {
                let rel_all = SECRETS
                    .iter()
                    .filter_map(|(p, dir)| p.strip_prefix(&format!("{cwd}/")).map(|r| (r, dir)))
                    .map(|(r, dir)| {
                        if *dir {
                            format!("cat {r}/secret 2>/dev/null; ls -A {r} 2>/dev/null")
                        } else {
                            format!("cat {r} 2>/dev/null")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut c = sbx_cmd(
                    u,
                    [
                        "-q",
                        "--profile",
                        profile,
                        "--",
                        "sh",
                        "-c",
                        &format!("{rel_all}; {read_all}; pwd"),
                    ],
                );
                c.env("HOME", &home).current_dir(home.join(cwd));
                let out = ok(&output(c), profile);
                assert!(
                    !out.contains("SECRET-"),
                    "as {}: {profile} in ~/{cwd} shows {out}",
                    u.name
                );
                assert_eq!(
                    out,
                    format!("{}\n", home.join(cwd).display()),
                    "as {}: {profile} in ~/{cwd}",
                    u.name
                );
            }
        }
    }
}

/// sbx-profile(5) lists every mask of `home-masks`: the one list, documented.
#[test]
fn the_man_page_lists_every_secret_mask() {
    let root = env!("CARGO_MANIFEST_DIR");
    let toml = std::fs::read_to_string(format!("{root}/profiles/home-masks.toml")).unwrap();
    let man = std::fs::read_to_string(format!("{root}/man/sbx-profile.5")).unwrap();
    let list: toml::Table = toml.parse().unwrap();
    let masks = list["mask"].as_array().unwrap();
    assert!(masks.len() >= 60, "{} masks", masks.len());
    for m in masks {
        let m = m.as_str().unwrap();
        let roff = m.replace('-', "\\-").replace('~', "\\(ti");
        assert!(man.contains(&roff), "sbx-profile(5) does not list {m}");
    }
}

#[test]
fn dev_knows_the_git_identity_and_commits() {
    for u in users() {
        let h = Home::new(u, "gitid");
        h.fx.file(
            "home/.gitconfig",
            "[user]\n\tname = Ada Tester\n\temail = ada@example.org\n",
            u,
        );
        let git = |args: &[&str]| {
            let mut c = as_user(u, "git");
            c.args(args).current_dir(&h.project).env("HOME", &h.home);
            let o = output(c);
            assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
            stdout(&o)
        };
        git(&["init", "-q"]);
        let commit = "git commit -q --allow-empty -m inside && git log -1 --format=%an/%ae";
        // With --vcs read-only, the repository's metadata takes no commit and no
        // change.
        let o = output(h.cmd(
            u,
            &[
                "--profile",
                "dev",
                "--vcs",
                "read-only",
                "--",
                "sh",
                "-c",
                commit,
            ],
        ));
        assert_eq!(
            code(&o),
            128,
            "as {}: git fails fatally: {}",
            u.name,
            stdout(&o)
        );
        assert!(
            stderr(&o).contains("Read-only file system"),
            "{}",
            stderr(&o)
        );
        // By default (dev's vcs = "commit") .git is staged: a file added and
        // committed inside, as the user's identity, is the host's next commit, and
        // the host's index agrees.
        h.fx.file("work/proj/added.txt", "added\n", u);
        let script = format!("git config user.name; git add -A && {commit}");
        let o = output(h.cmd(u, &["-q", "--profile", "dev", "--", "sh", "-c", &script]));
        assert_eq!(
            ok(&o, "dev"),
            "Ada Tester\nAda Tester/ada@example.org\n",
            "as {}",
            u.name
        );
        assert_eq!(git(&["log", "-1", "--format=%s"]), "inside\n");
        assert_eq!(git(&["ls-files"]), "added.txt\nsrc.txt\n");
        assert_eq!(git(&["status", "--porcelain"]), "", "as {}", u.name);
        // --vcs-writable (same as --vcs writable): written in place.
        let o = output(h.cmd(
            u,
            &[
                "-q",
                "--profile",
                "dev",
                "--vcs-writable",
                "--",
                "sh",
                "-c",
                "git commit -q --allow-empty -m again && echo '# ok' >> .git/config && echo wrote",
            ],
        ));
        assert_eq!(ok(&o, "dev --vcs-writable"), "wrote\n", "as {}", u.name);
        assert_eq!(git(&["log", "-1", "--format=%s"]), "again\n");
    }
}

#[test]
fn ssh_agent_is_granted_only_when_asked() {
    for u in users() {
        let fx = Fixture::new(u, "agent");
        let sock = fx.path.join("agent.sock");
        let mut agent = as_user(u, "ssh-agent");
        agent.args(["-D", "-a"]).arg(&sock);
        let mut agent = agent.stdout(std::process::Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !sock.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent never listened"
            );
            std::thread::yield_now();
        }
        let list = |extra: &[&str]| {
            let mut args = vec!["-q"];
            args.extend_from_slice(extra);
            args.extend(["--", "sh", "-c", "ssh-add -l; echo status=$?"]);
            let mut c = sbx_cmd(u, args);
            c.env("SSH_AUTH_SOCK", &sock);
            output(c)
        };
        // Not granted: the variable is not passed and the socket is not there.
        let o = list(&[]);
        assert!(
            stdout(&o).contains("status=2"),
            "as {}: {}",
            u.name,
            stdout(&o)
        );
        // Granted: the agent answers (it holds no key here: status 1).
        let o = list(&["--ssh-agent"]);
        assert!(
            stdout(&o).contains("The agent has no identities") && stdout(&o).contains("status=1"),
            "as {}: {}{}",
            u.name,
            stdout(&o),
            stderr(&o)
        );
        let _ = agent.kill();
        let _ = agent.wait();
        // Asked for without an agent: a clear error.
        let mut c = sbx_cmd(u, ["--ssh-agent", "--", "true"]);
        c.env_remove("SSH_AUTH_SOCK");
        let o = output(c);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("SSH_AUTH_SOCK is unset"),
            "{}",
            stderr(&o)
        );
    }
}

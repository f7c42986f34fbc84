//! Across time: what one sandbox writes never widens a later sandbox and never runs
//! on the host. Each test plays a hostile earlier run (a real sandbox plants), then
//! launches another profile, and checks the host from outside.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;

/// Tests that use the records directory (named sandboxes, a squatted directory)
/// take turns: the squatting test replaces the test user's directory.
static RECORDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn records_lock() -> std::sync::MutexGuard<'static, ()> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait until `sbx --list` shows `name` (the record is written just after the command
/// starts, so its first output can come before it); panics after 20 s.
fn wait_listed(u: &User, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !stdout(&run(u, &["--list"])).contains(name) {
        assert!(std::time::Instant::now() < deadline, "{name} never listed");
    }
}

/// A fake home owned by `u`, with a private key, authorized_keys and autostart.
fn fake_home(u: &User, tag: &str) -> Fixture {
    let fx = Fixture::new(u, tag);
    fx.file(".ssh/id_ed25519", "PRIVATE-KEY-MATERIAL\n", u);
    fx.file(".ssh/authorized_keys", "ssh-ed25519 AAAA original\n", u);
    fx.file(".config/autostart/keep.desktop", "[Desktop Entry]\n", u);
    fx.file(".cache/mozilla/cache.db", "c\n", u);
    fx.file("proj/README", "project\n", u);
    // Profiles live here: with it present, `home-masks` hides it and `shell` may
    // make ~/.config writable.
    fx.file(".config/sbx/profiles/.keep", "", u);
    own_all(&fx, u);
    fx
}

/// Every entry of the fixture owned by `u` (Fixture::file owns only the last parent).
fn own_all(fx: &Fixture, u: &User) {
    let mut todo = vec![fx.path.clone()];
    while let Some(d) = todo.pop() {
        fx.chown(&d, u);
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                fx.chown(&e.path(), u);
            }
        }
    }
}

fn in_home(u: &User, home: &Path, cwd: &Path, args: &[&str]) -> std::process::Output {
    let mut c = sbx_cmd(u, args);
    c.env("HOME", home).current_dir(cwd);
    output(c)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            let name = p.strip_prefix(dir).unwrap().display().to_string();
            if t.is_dir() {
                todo.push(p);
                v.push((name + "/", Vec::new()));
            } else if t.is_symlink() {
                v.push((
                    name,
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            } else {
                v.push((name, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn planted_symlinks_in_granted_places_are_never_followed() {
    for u in users() {
        let fx = fake_home(u, "plant");
        let home = &fx.path;
        let before_ssh = snapshot(&home.join(".ssh"));
        let before_auto = snapshot(&home.join(".config/autostart"));
        // Run 1, `dev`: the cache is writable; swap the browser's cache directories
        // for links to the keys and to autostart (a directory swapped for a link, and
        // a new link where nothing was, relative and absolute).
        let plant = format!(
            "rm -rf ~/.cache/mozilla && ln -s {h}/.ssh ~/.cache/mozilla && \
             ln -s ../.config/autostart ~/.cache/chromium && echo planted",
            h = home.display()
        );
        // `dev` keeps its writes to ~/.cache on a discarded overlay: nothing lands.
        let o = in_home(
            u,
            home,
            &home.join("proj"),
            &["-q", "--profile", "dev", "--", "sh", "-c", &plant],
        );
        assert!(
            stdout(&o).contains("planted"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        assert!(std::fs::symlink_metadata(home.join(".cache/mozilla"))
            .unwrap()
            .is_dir());
        // A sandbox the user gave ~/.cache (a custom grant) plants for real.
        let cache = home.join(".cache");
        let o = in_home(
            u,
            home,
            &home.join("proj"),
            &[
                "-q",
                "--profile",
                "dev",
                "--bind",
                cache.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &plant,
            ],
        );
        assert!(
            stdout(&o).contains("planted"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        assert!(std::fs::symlink_metadata(home.join(".cache/mozilla"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Run 2, `browser`: read the key, append to authorized_keys, drop an
        // autostart entry, through every granted path.
        let attack =
            "cat ~/.cache/mozilla/id_ed25519; echo evil >> ~/.cache/mozilla/authorized_keys; \
                      echo '[Desktop Entry]' > ~/.cache/chromium/evil.desktop; true";
        let o = in_home(
            u,
            home,
            &home.join("proj"),
            &[
                "--profile",
                "browser",
                "--net",
                "none",
                "--",
                "sh",
                "-c",
                attack,
            ],
        );
        let err = stderr(&o);
        assert!(
            !stdout(&o).contains("PRIVATE-KEY"),
            "as {}: the key was read",
            u.name
        );
        assert_eq!(
            snapshot(&home.join(".ssh")),
            before_ssh,
            "as {}: ~/.ssh changed",
            u.name
        );
        assert_eq!(
            snapshot(&home.join(".config/autostart")),
            before_auto,
            "as {}: autostart changed",
            u.name
        );
        for link in [".cache/mozilla", ".cache/chromium"] {
            assert!(
                err.contains(&format!(
                    "refused: {} is a symlink to ",
                    home.join(link).display()
                )) && err.contains(&format!("owned by uid {}", u.uid))
                    && err.contains("--bind "),
                "as {}: no refusal naming {link}: {err}",
                u.name
            );
        }
        // Links planted in the project, which the user then `cd`s through: the
        // shell's $PWD tells; a place elsewhere in the home it leads to is not granted.
        fx.file("bin/keep", "#!/bin/sh\n", u);
        own_all(&fx, u);
        for (link, target) in [("build", ".config/autostart"), ("out", "bin")] {
            let before = snapshot(&home.join(target));
            let o = in_home(
                u,
                home,
                &home.join("proj"),
                &[
                    "-q",
                    "--profile",
                    "dev",
                    "--",
                    "sh",
                    "-c",
                    &format!("ln -s {}/{target} {link} && echo planted", home.display()),
                ],
            );
            assert!(stdout(&o).contains("planted"), "{}", stderr(&o));
            let mut c = sbx_cmd(
                u,
                [
                    "--profile",
                    "dev",
                    "--",
                    "sh",
                    "-c",
                    "echo '#!/bin/sh' > evil; pwd",
                ],
            );
            c.env("HOME", home)
                .env("PWD", home.join("proj").join(link))
                .current_dir(home.join("proj").join(link));
            let o = output(c);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert_eq!(
                snapshot(&home.join(target)),
                before,
                "as {}: ~/{target} changed",
                u.name
            );
            assert!(
                stderr(&o).contains(&format!(
                    "through the symlink {}",
                    home.join("proj").join(link).display()
                )),
                "as {}: {}",
                u.name,
                stderr(&o)
            );
        }
        // `-q` does not hide it: it is a warning.
        let o = in_home(
            u,
            home,
            &home.join("proj"),
            &["-q", "--profile", "browser", "--net", "none", "--", "true"],
        );
        assert!(
            stderr(&o).contains("warning: ") && stderr(&o).contains("refused:"),
            "{}",
            stderr(&o)
        );
        // A required grant through a planted link stops the launch, naming it.
        let link = home.join("proj/keys");
        std::os::unix::fs::symlink(home.join(".ssh"), &link).unwrap();
        fx.chown(&link, u);
        let prof = fx.file("p.toml", "version = 1\ninclude = [\"minimal\"]\n[[mount]]\ntype = \"bind\"\nsrc = \"~/proj/keys\"\n", u);
        let o = in_home(
            u,
            home,
            &home.join("proj"),
            &["--profile", prof.to_str().unwrap(), "--", "true"],
        );
        assert_eq!(code(&o), 125, "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "refused: {} is a symlink to {}",
                link.display(),
                home.join(".ssh").display()
            )),
            "{}",
            stderr(&o)
        );
        // Typed on the command line, the same link is the user's own choice.
        let o = in_home(
            u,
            home,
            Path::new("/"),
            &[
                "--ro-bind",
                link.to_str().unwrap(),
                "--",
                "cat",
                &format!("{}/authorized_keys", link.display()),
            ],
        );
        assert!(
            stdout(&o).contains("original"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
    }
}

#[test]
fn a_rewritten_downloads_directory_is_not_granted() {
    for u in users() {
        let fx = fake_home(u, "udirs");
        let home = &fx.path;
        fx.file("bin/tool", "#!/bin/sh\n", u);
        fx.file("src/project/README", "p\n", u);
        own_all(&fx, u);
        for (target, why) in [
            ("$HOME/.ssh", "hidden component"),
            ("$HOME/.config/autostart", "hidden component"),
            ("$HOME/bin", "~/bin"),
            ("$HOME/src/project", "not a directory directly in $HOME"),
            ("$HOME", "is $HOME itself"),
            ("/etc", "not inside $HOME"),
        ] {
            let before: Vec<_> = [".ssh", ".config/autostart", "bin", "src"]
                .iter()
                .map(|d| snapshot(&home.join(d)))
                .collect();
            // Run 1, `shell` in ~/.config (writable there): point Downloads elsewhere.
            let plant =
                format!("printf 'XDG_DOWNLOAD_DIR=\"{target}\"\\n' > user-dirs.dirs && echo ok");
            let o = in_home(
                u,
                home,
                &home.join(".config"),
                &["-q", "--profile", "shell", "--", "sh", "-c", &plant],
            );
            assert!(stdout(&o).contains("ok"), "as {}: {}", u.name, stderr(&o));
            // Run 2, `browser`: write where Downloads would be.
            let dir = target.replace("$HOME", &home.to_string_lossy());
            let attack = format!("touch {dir}/planted; echo evil >> {dir}/authorized_keys; true");
            let o = in_home(
                u,
                home,
                &home.join("proj"),
                &[
                    "--profile",
                    "browser",
                    "--net",
                    "none",
                    "--",
                    "sh",
                    "-c",
                    &attack,
                ],
            );
            let after: Vec<_> = [".ssh", ".config/autostart", "bin", "src"]
                .iter()
                .map(|d| snapshot(&home.join(d)))
                .collect();
            assert_eq!(
                after, before,
                "as {}: Downloads = {target} was written",
                u.name
            );
            assert!(
                stderr(&o).contains("sets XDG_DOWNLOAD_DIR to") && stderr(&o).contains(why),
                "{target}: {}",
                stderr(&o)
            );
        }
    }
}

fn git(u: &User, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = as_user(u, "git");
    c.args([
        "-c",
        "user.email=t@e",
        "-c",
        "user.name=t",
        "-c",
        "protocol.file.allow=always",
    ])
    .args(args)
    .current_dir(dir)
    .env("HOME", dir);
    let o = output(c);
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    o
}

#[test]
fn project_metadata_the_host_executes_stays_read_only() {
    for u in users() {
        let fx = Fixture::new(u, "git");
        let (proj, lib) = (fx.path.join("proj"), fx.path.join("lib"));
        for d in [&proj, &lib] {
            std::fs::create_dir(d).unwrap();
            fx.chown(d, u);
            git(u, d, &["init", "-q"]);
            git(u, d, &["commit", "-q", "--allow-empty", "-m", "one"]);
        }
        let url = lib.to_str().unwrap();
        // A submodule at the top, one whose name holds `/` (absorbed under
        // .git/modules/libs/sub), one whose git directory stays in place (an existing
        // clone added as a submodule), and a linked worktree inside the project.
        git(u, &proj, &["submodule", "add", "-q", url, "sub"]);
        git(u, &proj, &["submodule", "add", "-q", url, "libs/sub"]);
        git(u, &proj, &["clone", "-q", url, "vendor"]);
        git(u, &proj, &["submodule", "add", "-q", url, "vendor"]);
        git(u, &proj, &["commit", "-q", "-m", "subs"]);
        git(u, &proj, &["worktree", "add", "-q", "wts/feat"]);
        let mark = fx.path.join("pwned");
        let watched = [
            ".git",
            "sub/.git",
            "libs/sub/.git",
            "vendor/.git",
            "wts/feat/.git",
        ];
        let before: Vec<_> = watched
            .iter()
            .map(|p| snapshot_any(&proj.join(p)))
            .collect();
        // Run 1, `dev` in the project: every way found to make the host's git run code.
        let fsm = format!("[core] fsmonitor = touch {}", mark.display());
        let attack = format!(
            "r() {{ \"$@\" 2>/dev/null && echo \"WROTE $*\" || true; }}; \
             r sh -c 'echo \"{fsm}\" >> .git/config'; \
             r sh -c 'echo touch {m} > .git/hooks/post-checkout'; \
             r sh -c 'echo \"* filter=x\" > .git/info/attributes'; \
             r sh -c 'echo ../evil > .git/commondir'; \
             r sh -c 'echo \"{fsm}\" >> .git/modules/sub/config'; \
             r sh -c 'echo \"{fsm}\" >> .git/modules/libs/sub/config'; \
             r sh -c 'echo \"{fsm}\" >> vendor/.git/config'; \
             r mv .git .git-old; \
             r sh -c 'echo gitdir: ../evil > sub/.git'; \
             r sh -c 'echo gitdir: ../../evil > libs/sub/.git'; \
             r sh -c 'echo gitdir: ../../evil > wts/feat/.git'; \
             r mv sub sub-old; r mv libs libs-old; r mv libs/sub libs/sub-old; \
             r mv wts wts-old; r mv vendor vendor-old; \
             echo ordinary > newfile && echo ordinary > libs/sub/newfile && echo done",
            m = mark.display()
        );
        // Read-only (every write refused), then dev's own `commit` (the top level
        // of .git staged: a write there may succeed inside, and is discarded).
        for mode in ["read-only", "commit"] {
            let o = in_home(
                u,
                &u.home,
                &proj,
                &[
                    "-q",
                    "--profile",
                    "dev",
                    "--vcs",
                    mode,
                    "--",
                    "sh",
                    "-c",
                    &attack,
                ],
            );
            let out = stdout(&o);
            assert!(
                out.contains("done"),
                "as {} ({mode}): {}",
                u.name,
                stderr(&o)
            );
            let wrote: Vec<&str> = out.lines().filter(|l| l.starts_with("WROTE")).collect();
            match mode {
                "read-only" => assert!(wrote.is_empty(), "as {}: {out}", u.name),
                _ => assert_eq!(
                    wrote,
                    ["WROTE sh -c echo ../evil > .git/commondir"],
                    "as {}: only the staged top level takes a new name",
                    u.name
                ),
            }
            for (p, b) in watched.iter().zip(&before) {
                assert_eq!(
                    &snapshot_any(&proj.join(p)),
                    b,
                    "as {} ({mode}): {p} changed",
                    u.name
                );
            }
        }
        assert_eq!(
            std::fs::read_to_string(proj.join("newfile")).unwrap(),
            "ordinary\n"
        );
        assert_eq!(
            std::fs::read_to_string(proj.join("libs/sub/newfile")).unwrap(),
            "ordinary\n"
        );
        // The host's git, after the run, runs nothing: at the top (which visits every
        // submodule) and in the worktree.
        git(u, &proj, &["status", "--short"]);
        git(u, &proj.join("wts/feat"), &["status", "--short"]);
        assert!(
            !mark.exists(),
            "as {}: the host's git ran planted code",
            u.name
        );
        // A read-only bind the user asked for stays read-only over a protected
        // submodule (its directory is made a mount point again after it).
        let vendor = proj.join("vendor");
        let o = in_home(
            u,
            &u.home,
            &proj,
            &[
                "-q",
                "--profile",
                "dev",
                "--ro-bind",
                vendor.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "touch vendor/x 2>/dev/null && echo wrote || echo refused",
            ],
        );
        assert_eq!(stdout(&o), "refused\n", "as {}: {}", u.name, stderr(&o));
        // A repository the sandbox creates where none was is named when it ends.
        let o = in_home(
            u,
            &u.home,
            &proj,
            &[
                "-q",
                "--profile",
                "dev",
                "--",
                "sh",
                "-c",
                "mkdir -p newdir/.git lib/vendor/deep/er/sub/.git && echo made",
            ],
        );
        assert!(stdout(&o).contains("made"));
        // Deep ones too: a prompt that runs `git status` runs one's config on `cd`.
        for planted in ["newdir/.git", "lib/vendor/deep/er/sub/.git"] {
            assert!(
                stderr(&o).contains(&format!(
                    "the sandbox created {}",
                    proj.join(planted).display()
                )),
                "as {}: {planted}: {}",
                u.name,
                stderr(&o)
            );
        }
        // A FIFO planted where a config is read does not hang the next launch.
        let bare = fx.path.join("bare");
        std::fs::create_dir(&bare).unwrap();
        fx.chown(&bare, u);
        let o = in_home(
            u,
            &u.home,
            &bare,
            &[
                "-q",
                "--profile",
                "dev",
                "--",
                "sh",
                "-c",
                "mkdir -p .git/modules/x && mkfifo .git/modules/x/config .git/index && \
             printf '[submodule \"x\"]\\n' > .git/config && echo planted",
            ],
        );
        assert!(stdout(&o).contains("planted"), "{}", stderr(&o));
        let mut c = sbx_cmd(u, ["-q", "--profile", "dev", "--", "echo", "launched"]);
        c.current_dir(&bare);
        assert_eq!(stdout(&output(c)), "launched\n");
        // Asked for, the metadata is writable.
        let o = in_home(
            u,
            &u.home,
            &proj,
            &[
                "-q",
                "--profile",
                "dev",
                "--vcs-writable",
                "--",
                "sh",
                "-c",
                "echo '# ok' >> .git/config && echo wrote",
            ],
        );
        assert!(
            stdout(&o).contains("wrote"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        // A `.git` that is a symlink cannot be protected: refused, naming it.
        let other = fx.path.join("other");
        std::fs::create_dir(&other).unwrap();
        fx.chown(&other, u);
        let link = other.join(".git");
        std::os::unix::fs::symlink(proj.join(".git"), &link).unwrap();
        fx.chown(&link, u);
        let o = in_home(
            u,
            &u.home,
            &other,
            &["-q", "--profile", "dev", "--", "true"],
        );
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains(&format!("{} is a symlink", link.display()))
                && stderr(&o).contains("--vcs writable"),
            "{}",
            stderr(&o)
        );
    }
}

/// A file's bytes, or a directory's tree, or a link's target.
fn snapshot_any(p: &Path) -> Vec<(String, Vec<u8>)> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => snapshot(p),
        Ok(m) if m.file_type().is_symlink() => vec![(
            "->".into(),
            std::fs::read_link(p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )],
        Ok(_) => vec![("".into(), std::fs::read(p).unwrap())],
        Err(_) => Vec::new(),
    }
}

#[test]
fn the_terminal_survives_the_sandbox() {
    let hostile = r#"
import errno, fcntl, os, struct, termios
res = []
for name, req, arg in [("TIOCSETD", 0x5423, struct.pack("i", 27)), ("TIOCEXCL", 0x540C, 0),
                       ("TIOCEXCL-high", (1 << 32) | 0x540C, 0), ("TIOCCONS", 0x541D, 0),
                       ("TIOCVHANGUP", 0x5437, 0)]:
    try:
        fcntl.ioctl(0, req, arg); res.append(name + "=done")
    except OSError as e:
        res.append(name + "=" + errno.errorcode[e.errno])
t = termios.tcgetattr(0)
t[3] &= ~(termios.ECHO | termios.ICANON)
termios.tcsetattr(0, termios.TCSANOW, t)
fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK)
print("RESULT " + " ".join(res), flush=True)
termios.tcdrain(1)
termios.tcflow(0, termios.TCOOFF)
"#;
    for u in users() {
        let fx = Fixture::new(u, "tty");
        let script = fx.file("hostile.py", hostile, u);
        let mut pty = Pty::new(u);
        // dash: no line editor that would reset the terminal itself.
        let mut shell = as_user(u, "dash");
        shell.arg("-i").env("PS1", "$ ");
        let child = pty.spawn(shell);
        pty.write(&format!(
            "{} -q --ro-bind {s} -- python3 {s}; echo status=$?\n",
            sbx_bin().display(),
            s = script.display()
        ));
        // The typed line holds "status=" too: wait for the printed one.
        let got = pty.read_until("\nstatus=0\r\n", Duration::from_secs(30));
        assert!(
            got.contains("RESULT TIOCSETD=EPERM TIOCEXCL=EPERM TIOCEXCL-high=EPERM TIOCCONS=EPERM TIOCVHANGUP=EPERM"),
            "as {}: {got}",
            u.name
        );
        assert!(got.contains("status=0"), "{got}");
        // The user's shell still reads, echoes what is typed, and opens the terminal.
        pty.write("echo ma''rker >/dev/tty\n");
        let after = pty.read_until("marker\r\n", Duration::from_secs(10));
        assert!(
            after.contains("echo ma''rker"),
            "as {}: typing is not echoed: {after:?}",
            u.name
        );
        assert!(after.contains("marker\r\n"), "as {}: {after:?}", u.name);
        // A command whose stdio is not the terminal reaches it through /dev/tty.
        pty.write(&format!(
            "{} -q -- sh -c 'stty -echo </dev/tty' </dev/null >/dev/null 2>&1; echo second=$?\n",
            sbx_bin().display()
        ));
        let got = pty.read_until("\nsecond=0\r\n", Duration::from_secs(30));
        assert!(got.contains("second=0"), "as {}: {got:?}", u.name);
        pty.write("echo ag''ain\n");
        let after = pty.read_until("again\r\n", Duration::from_secs(10));
        assert!(
            after.contains("echo ag''ain"),
            "as {}: typing is not echoed after stty -echo </dev/tty: {after:?}",
            u.name
        );
        pty.write("exit\n");
        let _ = pty.drain(Duration::from_secs(10));
        wait_status(child, "dash");
    }
}

#[test]
fn enter_runs_no_file_the_sandbox_wrote() {
    let _records = records_lock();
    for u in users() {
        let name = format!("rc{}", unique());
        let mut c = sbx_cmd(u, ["-q", "--name", &name, "--", "sh", "-c",
            "for f in .bashrc .bash_profile .profile .zshrc .inputrc; do echo 'echo RC-RAN-$f' > ~/$f; done; echo ready; exec sleep 600"]);
        let mut bg = spawn_until(&mut c, "ready", Duration::from_secs(30));
        wait_listed(u, &name);
        let mut pty = Pty::new(u);
        let mut enter = sbx_cmd(u, ["--enter", &name]);
        enter.env("TERM", "dumb");
        let child = pty.spawn(enter);
        pty.write("echo in''side; exit\n");
        let got = pty.read_until("inside", Duration::from_secs(30));
        let got = got + &pty.drain(Duration::from_secs(10));
        wait_status(child, "enter");
        let o = run(u, &["--kill", &name]);
        let _ = bg.wait();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(got.contains("inside"), "as {}: {got}", u.name);
        assert!(
            !got.contains("RC-RAN"),
            "as {}: --enter ran a startup file: {got}",
            u.name
        );
    }
}

#[test]
fn the_current_directory_grant_never_shares_host_places() {
    for u in users() {
        // A private socket directory as the ssh-agent makes one, with a listener.
        let fx = Fixture::new(u, "sock");
        let sock = fx.path.join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        for (cwd, why) in [
            (Path::new("/tmp"), "/tmp is shared".to_string()),
            (Path::new("/var/tmp"), "/var/tmp is shared".to_string()),
            (Path::new("/dev/shm"), "/dev/shm is shared".to_string()),
            (Path::new("/"), "$HOME or a directory above it".to_string()),
            (
                fx.path.as_path(),
                format!("holds the socket {}", sock.display()),
            ),
        ] {
            for profile in ["default", "shell", "dev"] {
                let mut c = sbx_cmd(
                    u,
                    [
                        "--profile",
                        profile,
                        "--",
                        "sh",
                        "-c",
                        &format!("ls -a {} 2>&1; true", fx.path.display()),
                    ],
                );
                c.current_dir(cwd);
                let o = output(c);
                assert_eq!(
                    code(&o),
                    0,
                    "{profile} in {}: {}",
                    cwd.display(),
                    stderr(&o)
                );
                assert!(
                    !stdout(&o).contains("agent.sock"),
                    "as {}: {profile} in {} shows the socket",
                    u.name,
                    cwd.display()
                );
                assert!(
                    stderr(&o).contains(&format!("not binding {}", cwd.display()))
                        && stderr(&o).contains(&why),
                    "{profile} in {}: {}",
                    cwd.display(),
                    stderr(&o)
                );
            }
        }
    }
}

#[test]
fn proc_describes_the_sandbox_not_the_host() {
    for u in users() {
        let out = sh(u, &[], "for f in keys key-users timer_list interrupts; do printf '%s=%s ' $f $(cat /proc/$f 2>/dev/null | wc -c); done; echo; cat /proc/self/status | grep -c ^Pid");
        assert!(
            out.starts_with("keys=0 key-users=0 timer_list=0 interrupts=0 "),
            "as {}: {out}",
            u.name
        );
        assert!(
            out.ends_with("1\n"),
            "the sandbox's own entries stay: {out}"
        );
    }
}

#[test]
fn what_sbx_prints_from_a_sandbox_is_escaped() {
    let _records = records_lock();
    for u in users() {
        let name = format!("esc{}", unique());
        let evil = "\u{1b}]0;pwned\u{7}\u{1b}[31m";
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--name",
                &name,
                "--",
                "sh",
                "-c",
                "echo ready; exec sleep 600",
                evil,
            ],
        );
        let mut bg = spawn_until(&mut c, "ready", Duration::from_secs(30));
        wait_listed(u, &name);
        let list = run(u, &["--list"]);
        run(u, &["--kill", &name]);
        let _ = bg.wait();
        let out = stdout(&list);
        assert!(out.contains(&name), "{out}");
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "raw control bytes: {out:?}"
        );
        assert!(out.contains("\\x1b]0;pwned\\x07\\x1b[31m"), "{out}");
        // Errors quote paths: escaped too.
        let o = run(
            u,
            &["--ro-bind", &format!("/nonexistent{evil}"), "--", "true"],
        );
        assert_eq!(code(&o), 125);
        assert!(
            !stderr(&o).contains('\u{1b}') && stderr(&o).contains("\\x1b]0;pwned"),
            "{:?}",
            stderr(&o)
        );
    }
}

#[test]
fn a_link_swapped_in_while_sbx_checks_is_never_followed() {
    for u in users() {
        let fx = fake_home(u, "race");
        let home = fx.path.clone();
        let before = snapshot(&home.join(".ssh"));
        // A writer flips ~/.cache/mozilla between its directory and a link to ~/.ssh
        // (as a sandbox given ~/.cache could, while another launches), atomically.
        let link = home.join(".cache/mozlink");
        std::os::unix::fs::symlink(home.join(".ssh"), &link).unwrap();
        fx.chown(&link, u);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let stop = stop.clone();
            let a = std::ffi::CString::new(
                home.join(".cache/mozilla")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .unwrap();
            let b =
                std::ffi::CString::new(link.clone().into_os_string().into_encoded_bytes()).unwrap();
            std::thread::spawn(move || {
                let mut flips = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && flips < 50_000_000 {
                    // SAFETY: two NUL-terminated paths.
                    unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    flips += 1;
                }
                flips
            })
        };
        let attack = "cat ~/.cache/mozilla/id_ed25519 2>/dev/null; echo evil >> ~/.cache/mozilla/authorized_keys 2>/dev/null; true";
        let mut outcomes = std::collections::BTreeMap::new();
        for _ in 0..20 {
            let o = in_home(
                u,
                &home,
                &home.join("proj"),
                &[
                    "-q",
                    "--profile",
                    "browser",
                    "--net",
                    "none",
                    "--",
                    "sh",
                    "-c",
                    attack,
                ],
            );
            assert!(
                !stdout(&o).contains("PRIVATE-KEY"),
                "as {}: the key was read",
                u.name
            );
            assert!(matches!(code(&o), 0 | 125), "as {}: {}", u.name, stderr(&o));
            *outcomes.entry(code(&o)).or_insert(0) += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let flips = flipper.join().unwrap();
        assert!(flips > 0);
        assert_eq!(
            snapshot(&home.join(".ssh")),
            before,
            "as {}: ~/.ssh changed ({outcomes:?})",
            u.name
        );
    }
}

/// The trust rule sees the tree as it will be: a symlink op that changes nothing
/// (the same link again) hides no earlier writable bind of the profile directory.
#[test]
fn the_profile_directory_stays_out_of_reach_whatever_the_ops_around_it() {
    for u in users() {
        let fx = fake_home(u, "trust");
        let profiles = fx.path.join(".config/sbx/profiles");
        let p = profiles.to_str().unwrap();
        for args in [
            vec!["--bind", p, "--", "true"],
            vec![
                "--symlink",
                "/tmp:/l",
                "--bind",
                &format!("{p}:/l/x"),
                "--symlink",
                "/tmp:/l",
                "--",
                "true",
            ],
            vec!["--bind", &format!("{p}:/x"), "--dir", "/x", "--", "true"],
        ] {
            let mut c = sbx_cmd(u, &args);
            c.env("HOME", &fx.path);
            let o = output(c);
            assert_eq!(code(&o), 125, "as {}: {args:?} was accepted", u.name);
            assert!(
                stderr(&o).contains("write access to the profile directory"),
                "{args:?}: {}",
                stderr(&o)
            );
        }
        assert_eq!(
            std::fs::read_dir(&profiles).unwrap().count(),
            1,
            "only .keep is there"
        );
    }
}

/// A mask over the profile directory inside a writable home does not protect it
/// when the sandbox can rename a directory above the mask: the mount moves with the
/// renamed directory and a new ~/.config/sbx/profiles can be made in its place
/// (rename(2) refuses only the mount point itself, EBUSY). Such a profile is
/// refused; masking the directory right below the bind holds, and the same attack
/// then fails inside.
#[test]
fn a_mask_the_sandbox_could_move_away_does_not_protect_the_profiles() {
    let attack = "mv ~/.config ~/.config-moved && mkdir -p ~/.config/sbx/profiles \
                  && echo 'version = 1' > ~/.config/sbx/profiles/default.toml";
    for u in users() {
        let fx = fake_home(u, "trust-rename");
        let profiles = Fixture::new(u, "trust-rename-profiles");
        let profile = |name: &str, mask: &str| {
            profiles
                .file(
                    &format!("{name}.toml"),
                    &format!(
                        "version = 1\ninclude = [\"minimal\"]\nmask = [\"{mask}\"]\n\
                         [[mount]]\ntype = \"bind\"\nsrc = \"~\"\n"
                    ),
                    u,
                )
                .to_str()
                .unwrap()
                .to_string()
        };
        let run = |prof: &str| {
            let mut c = sbx_cmd(u, ["-q", "--profile", prof, "--", "sh", "-c", attack]);
            c.env("HOME", &fx.path).current_dir(&fx.path);
            output(c)
        };
        let o = run(&profile("deep", "~/.config/sbx"));
        assert_eq!(code(&o), 125, "as {}: accepted: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "could rename {} and make a new one",
                fx.path.join(".config").display()
            )),
            "{}",
            stderr(&o)
        );
        let o = run(&profile("top", "~/.config"));
        assert_eq!(code(&o), 1, "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains("Device or resource busy"),
            "{}",
            stderr(&o)
        );
        assert!(!fx.path.join(".config-moved").exists());
        assert!(!fx.path.join(".config/sbx/profiles/default.toml").exists());
    }
}

/// Rewrites the index entry of `hidden.c` with the file's current stat data and its
/// old object id (checksum recomputed): the classic way to hide an edit from
/// `git status`, which trusts matching stat data without reading the file.
const HIDE_EDIT: &str = r#"
import hashlib, os, struct, sys
p = sys.argv[1] + "/index"
b = open(p, "rb").read()
assert b[:4] == b"DIRC" and struct.unpack(">I", b[4:8])[0] in (2, 3)
n = struct.unpack(">I", b[8:12])[0]
i, out = 12, bytearray(b[:12])
for _ in range(n):
    flags = struct.unpack(">H", b[i + 60:i + 62])[0]
    nl, at = flags & 0xfff, 64 if flags & 0x4000 else 62
    ln = (at + nl + 8) // 8 * 8
    e = bytearray(b[i:i + ln])
    if b[i + at:i + at + nl] == b"hidden.c":
        # An old mtime: not "racily clean", which git would read again.
        old = os.stat(".git/HEAD").st_mtime - 60
        os.utime("hidden.c", (old, old))
        s = os.stat("hidden.c")
        mode = struct.unpack(">I", e[24:28])[0]
        e[0:40] = struct.pack(">10I", int(s.st_ctime), s.st_ctime_ns % 10**9,
            int(s.st_mtime), s.st_mtime_ns % 10**9, s.st_dev & 0xffffffff,
            s.st_ino & 0xffffffff, mode, int(sys.argv[2]), int(sys.argv[3]), s.st_size)
    out += e
    i += ln
out += b[i:-20]
out += hashlib.sha1(out).digest()
open(p + ".new", "wb").write(out)
os.rename(p + ".new", p)
"#;

#[test]
fn a_sandbox_that_commits_leaves_git_nothing_to_run_or_hide() {
    for u in users() {
        let fx = Fixture::new(u, "gitstage");
        let mark = fx.path.join("pwned");
        let setup = |name: &str| {
            let d = fx.path.join(name);
            std::fs::create_dir(&d).unwrap();
            fx.chown(&d, u);
            for (f, text) in [
                ("Makefile", "all:\n\techo ok\n"),
                ("README", "readme\n"),
                ("hidden.c", "int x;\n"),
            ] {
                fx.file(&format!("{name}/{f}"), text, u);
            }
            git(u, &d, &["init", "-q"]);
            git(u, &d, &["add", "-A"]);
            git(u, &d, &["commit", "-q", "-m", "init"]);
            d
        };
        let hide = fx.path.join("hide.py");
        std::fs::write(&hide, HIDE_EDIT).unwrap();
        let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
        // The control: on the host, the rewritten index hides the edit.
        let ctl = setup("ctl");
        std::fs::write(ctl.join("hidden.c"), "int y;\n").unwrap();
        let mut c = as_user(u, "python3");
        c.args([hide.to_str().unwrap(), ".git", &uid, &gid])
            .current_dir(&ctl);
        assert!(output(c).status.success());
        assert_eq!(
            stdout(&git(u, &ctl, &["status", "--porcelain"])),
            "",
            "the control: the edit is hidden"
        );

        let proj = setup("proj");
        let watched = ["hooks", "config", "info", "description"];
        let before: Vec<_> = watched
            .iter()
            .map(|p| snapshot_any(&proj.join(".git").join(p)))
            .collect();
        let attack = format!(
            "set -e; g() {{ git -c user.name=t -c user.email=t@e \"$@\"; }}; \
             echo legit > legit.txt && g add legit.txt && g commit -q -m legit; \
             echo pwn >> Makefile && g update-index --assume-unchanged Makefile; \
             echo pwn >> README && g update-index --skip-worktree README; \
             echo 'int y;' > hidden.c && python3 {hide} .git {uid} {gid}; \
             g replace HEAD HEAD~1; \
             mkdir .git/rebase-merge .git/sequencer .git/remotes; \
             printf 'exec touch {m}\\n' > .git/rebase-merge/git-rebase-todo; \
             cp .git/rebase-merge/git-rebase-todo .git/sequencer/todo; \
             echo refs/heads/master > .git/rebase-merge/head-name; touch .git/rebase-merge/interactive; \
             g rev-parse HEAD > .git/rebase-merge/onto; cp .git/rebase-merge/onto .git/rebase-merge/orig-head; \
             echo 'URL: {m}' > .git/remotes/origin; echo x > .git/some-new-name; \
             echo ../evil > .git/commondir; printf '[core]\\n\\tfsmonitor = touch {m}\\n' > .git/config.worktree; \
             (echo hook > .git/hooks/post-commit) 2>/dev/null && echo WROTE hook || true; \
             (echo '[core]' >> .git/config) 2>/dev/null && echo WROTE config || true; \
             echo done",
            hide = hide.display(),
            m = mark.display()
        );
        let o = committing(u, &proj, &hide, &attack);
        let err = stderr(&o);
        assert_eq!(stdout(&o), "done\n", "as {}: {err}", u.name);
        // The commit is the host's; the replace ref is gone, with a warning.
        assert_eq!(
            stdout(&git(u, &proj, &["log", "--format=%s"])),
            "legit\ninit\n",
            "as {}",
            u.name
        );
        assert_eq!(stdout(&git(u, &proj, &["replace", "-l"])), "");
        assert!(err.contains("refs/replace/"), "as {}: {err}", u.name);
        // Every edit shows, none flagged away.
        assert_eq!(
            stdout(&git(u, &proj, &["status", "--porcelain"])),
            " M Makefile\n M README\n M hidden.c\n",
            "as {}",
            u.name
        );
        let flags = stdout(&git(u, &proj, &["ls-files", "-v"]));
        assert!(
            flags.lines().all(|l| l.starts_with("H ")),
            "as {}: {flags}",
            u.name
        );
        // Nothing new in .git, named; what git executes unchanged.
        for name in [
            "commondir",
            "config.worktree",
            "rebase-merge",
            "sequencer",
            "remotes",
            "some-new-name",
        ] {
            assert!(
                std::fs::symlink_metadata(proj.join(".git").join(name)).is_err(),
                "as {}: .git/{name} reached the host",
                u.name
            );
            assert!(err.contains(name), "as {}: {name} not named: {err}", u.name);
        }
        for (p, b) in watched.iter().zip(&before) {
            assert_eq!(
                &snapshot_any(&proj.join(".git").join(p)),
                b,
                "as {}: .git/{p} changed",
                u.name
            );
        }
        let mut c = as_user(u, "git");
        c.args(["rebase", "--continue"])
            .current_dir(&proj)
            .env("HOME", &proj);
        assert!(!output(c).status.success(), "no rebase is in progress");
        git(u, &proj, &["status"]);
        assert!(
            !mark.exists(),
            "as {}: the host's git ran planted code",
            u.name
        );
    }
}

#[test]
fn a_git_the_host_ran_meanwhile_wins_over_the_sandbox() {
    for u in users() {
        let fx = Fixture::new(u, "gitrace");
        let proj = fx.path.join("proj");
        std::fs::create_dir(&proj).unwrap();
        fx.chown(&proj, u);
        git(u, &proj, &["init", "-q"]);
        git(u, &proj, &["commit", "-q", "--allow-empty", "-m", "init"]);
        for f in ["inside.txt", "host.txt"] {
            fx.file(&format!("proj/{f}"), "x\n", u);
        }
        // Two FIFOs outside the project: "staged" from the sandbox, "go" to it. The
        // test holds both open read-write, so neither open blocks nor sees EOF.
        let (staged, go) = (fx.path.join("staged"), fx.path.join("go"));
        for f in [&staged, &go] {
            let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
            // SAFETY: valid path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap()
        };
        let (staged_fd, mut go_fd) = (open(&staged), open(&go));
        let script = format!(
            "git add inside.txt && git -c user.name=t -c user.email=t@e commit -qm inside && \
             echo staged > {s} && read x < {g} && echo end",
            s = staged.display(),
            g = go.display()
        );
        let mut c = sbx_cmd(
            u,
            [
                "--profile",
                "dev",
                "--bind",
                staged.to_str().unwrap(),
                "--bind",
                go.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        c.current_dir(&proj).env("HOME", &u.home);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = c.spawn().unwrap();
        let got = read_until(
            std::os::fd::AsRawFd::as_raw_fd(&staged_fd),
            "staged",
            Duration::from_secs(60),
        );
        assert!(
            got.contains("staged"),
            "as {}: the sandbox never staged",
            u.name
        );
        git(u, &proj, &["add", "host.txt"]);
        git(u, &proj, &["commit", "-q", "-m", "host"]);
        use std::io::Write;
        go_fd.write_all(b"go\n").unwrap();
        let o = wait_output(child, "sbx");
        assert_eq!(stdout(&o), "end\n", "as {}: {}", u.name, stderr(&o));
        // The index by sbx's own check, the branch by git's (update-ref's old value).
        for what in [
            "it changed on the host during the run; the host's is kept",
            "refs/heads/master: fatal: update_ref failed",
        ] {
            assert!(
                stderr(&o).contains(what),
                "as {}: {what}: {}",
                u.name,
                stderr(&o)
            );
        }
        assert_eq!(stdout(&git(u, &proj, &["ls-files"])), "host.txt\n");
        assert_eq!(
            stdout(&git(u, &proj, &["log", "--format=%s"])),
            "host\ninit\n"
        );
    }
}

/// What a developer does with git in a day works under plain `--profile dev` and
/// lands on the host: a commit, a new branch with a commit, a tag, a branch
/// deleted, a stash pushed beside one the host had; the moves are listed, the
/// reflogs gain the sandbox's lines, and the host's `git fsck` finds nothing wrong.
#[test]
fn everyday_git_in_dev_lands_on_the_host() {
    for u in users() {
        let fx = Fixture::new(u, "gitday");
        let proj = git_project(u, &fx);
        git(u, &proj, &["branch", "old"]);
        std::fs::write(proj.join("a.txt"), "host stash\n").unwrap();
        git(u, &proj, &["stash", "-q"]);
        let script = "set -e; g() { git -c user.name=t -c user.email=t@e \"$@\"; }; \
                      echo b > b.txt && head -c 200000 /dev/urandom > big.bin && \
                      g add b.txt big.bin && g commit -qm second; \
                      g checkout -qb topic && echo c > c.txt && g add c.txt && g commit -qm topic; \
                      g checkout -q master && g tag v1 && g branch -qD old; \
                      echo wip > a.txt && g stash -q; g stash list | wc -l";
        let mut c = sbx_cmd(u, ["--profile", "dev", "--", "sh", "-c", script]);
        c.current_dir(&proj).env("HOME", &u.home);
        let o = output(c);
        let err = stderr(&o);
        assert_eq!(stdout(&o).trim(), "2", "as {}: {err}", u.name);
        assert_eq!(code(&o), 0, "as {}: {err}", u.name);
        let out = |args: &[&str]| stdout(&git(u, &proj, args));
        assert_eq!(out(&["log", "--format=%s", "master"]), "second\ninit\n");
        assert_eq!(out(&["log", "--format=%s", "-1", "topic"]), "topic\n");
        assert_eq!(out(&["tag"]), "v1\n");
        assert_eq!(out(&["branch", "--list", "old"]), "");
        assert_eq!(out(&["stash", "list"]).lines().count(), 2, "as {}", u.name);
        assert_eq!(out(&["symbolic-ref", "HEAD"]), "refs/heads/master\n");
        assert_eq!(out(&["status", "--porcelain"]), "", "as {}", u.name);
        for moved in [
            "refs/heads/master ",
            "refs/heads/topic new at",
            "refs/tags/v1 new at",
            "refs/heads/old deleted",
            "refs/stash ",
        ] {
            assert!(err.contains(moved), "as {}: {moved}: {err}", u.name);
        }
        let reflog = out(&["reflog", "--format=%gs", "master"]);
        assert!(
            reflog.starts_with("commit: second\n"),
            "as {}: {reflog}",
            u.name
        );
        // What sbx made in .git is the user's to go on with: a host commit on the
        // new branch appends to the reflog sbx created.
        out(&["checkout", "-q", "topic"]);
        out(&["commit", "-q", "--allow-empty", "-m", "host on topic"]);
        let reflog = out(&["reflog", "--format=%gs", "topic"]);
        assert!(
            reflog.starts_with("commit: host on topic\ncommit: topic\n"),
            "as {}: {reflog}",
            u.name
        );
        let mut c = as_user(u, "git");
        c.args(["fsck", "--strict", "--no-dangling"])
            .current_dir(&proj)
            .env("HOME", &proj);
        let f = output(c);
        assert!(f.status.success(), "as {}: {}", u.name, stderr(&f));
    }
}

/// Writes a loose object from stdin with the header given as argv[1] verbatim
/// ("blob 05", "commit 123"): git's own commands write only canonical objects.
const WRITE_OBJECT: &str = r#"
import hashlib, os, sys, zlib
body = sys.stdin.buffer.read()
raw = sys.argv[1].encode() + b"\0" + body
oid = hashlib.sha1(raw).hexdigest()
d = os.path.join(".git", "objects", oid[:2])
os.makedirs(d, exist_ok=True)
open(os.path.join(d, oid[2:]), "wb").write(zlib.compress(raw))
print(oid)
"#;

/// 2000 commits, each the parent of the next, the first naming a parent that does
/// not exist; master moved to the last.
const CHAIN: &str = r#"
import hashlib, os, subprocess, zlib
tree = subprocess.check_output(["git", "rev-parse", "HEAD^{tree}"]).decode().strip()
parent = "1" * 40
for i in range(2000):
    body = ("tree %s\nparent %s\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\n%d\n" % (tree, parent, i)).encode()
    raw = b"commit %d\0" % len(body) + body
    parent = hashlib.sha1(raw).hexdigest()
    d = ".git/objects/" + parent[:2]
    os.makedirs(d, exist_ok=True)
    open(d + "/" + parent[2:], "wb").write(zlib.compress(raw))
open(".git/refs/heads/master", "w").write(parent + "\n")
"#;

/// Writes a version-2 index of the entries given as `mode oid path` arguments, in
/// the order given (git's own commands sort and check them).
const WRITE_INDEX: &str = r#"
import hashlib, struct, sys
ents = [sys.argv[i:i + 3] for i in range(1, len(sys.argv), 3)]
out = bytearray(b"DIRC" + struct.pack(">II", 2, len(ents)))
for mode, oid, path in ents:
    p = path.encode()
    e = struct.pack(">10I", 0, 0, 0, 0, 0, 0, int(mode, 8), 0, 0, 0) + bytes.fromhex(oid)
    e += struct.pack(">H", len(p)) + p
    e += b"\0" * (8 - len(e) % 8)
    out += e
out += hashlib.sha1(out).digest()
open(".git/index", "wb").write(out)
"#;

/// Whatever a committing sandbox leaves, the host's repository is one git accepts:
/// each run below tries one way to leave it broken, misleading or dangerous (a
/// class each: objects git parses differently, refs and HEAD git cannot read,
/// trees fsck refuses, an index naming what is not there, a long history with a
/// hole), and after each the host's `git fsck --strict` is clean and everyday
/// commands work. The oracle is git itself, not sbx's reading of it.
#[test]
fn whatever_a_committing_sandbox_leaves_the_host_s_git_accepts() {
    let attacks: &[(&str, &str)] = &[
        (
            "non-canonical object headers",
            "a=$(printf hello | python3 $W 'blob +5'); b=$(printf hello | python3 $W 'blob 05'); \
             t=$(printf '100644 blob '$a'\\ta\\n100644 blob '$b'\\tb\\n' | g mktree --missing); \
             g update-ref refs/heads/master $(g commit-tree $t -p HEAD -m x)",
        ),
        (
            "packed-refs git cannot read",
            "h=$(g rev-parse HEAD); printf '^'$h'\\n'$h' refs/heads//x\\n# junk\\n'$h' refs/heads/y/' > .git/packed-refs",
        ),
        (
            "a forged peeled tag",
            "g tag -a -m t v2 && g pack-refs --all && c=$(g commit-tree $(g rev-parse HEAD^{tree}) -m evil) && \
             printf '^'$c'\\n' >> .git/packed-refs",
        ),
        ("HEAD at nothing", "printf 'ref: refs/\\n' > .git/HEAD"),
        ("HEAD at a bad name", "printf 'ref: refs/heads//x\\n' > .git/HEAD"),
        (
            "a loop of symbolic refs",
            "printf 'ref: refs/heads/loop\\n' > .git/refs/heads/master; printf 'ref: refs/heads/master\\n' > .git/refs/heads/loop",
        ),
        (
            "objects of the wrong type",
            "b=$(printf x | g hash-object -w --stdin); \
             c=$(printf 'tree '$b'\\nauthor a <a> 0 +0000\\ncommitter a <a> 0 +0000\\n\\nx\\n' | python3 $W 'commit 112'); \
             g update-ref refs/heads/master $c; g update-ref refs/heads/t $(g rev-parse HEAD^{tree})",
        ),
        (
            "a tree with .git and a file beside a directory of its name",
            "b=$(printf x | g hash-object -w --stdin); s=$(printf '100644 blob '$b'\\tpwn\\n' | g mktree); \
             t=$(printf '120000 blob '$b'\\tx\\n040000 tree '$s'\\tx\\n040000 tree '$s'\\t.git\\n' | g mktree --missing); \
             g update-ref refs/heads/master $(g commit-tree $t -p HEAD -m x)",
        ),
        (
            ".gitmodules git's fsck refuses",
            "m=$(printf '[submodule \"a\"] update = !touch /tmp/x\\n\\tpath = a\\n\\turl = \"\" --upload-pack=x\\n' | g hash-object -w --stdin); \
             t=$(printf '100644 blob '$m'\\t.gitmodules\\n' | g mktree); \
             g update-ref refs/heads/master $(g commit-tree $t -p HEAD -m x)",
        ),
        (
            "an index naming a missing object",
            "g update-index --add --cacheinfo 100644,1234567890123456789012345678901234567890,ghost.txt",
        ),
        (
            "a long history with a hole at its root",
            "python3 $(dirname $W)/chain.py",
        ),
        (
            "an index out of order",
            "A=$(g rev-parse HEAD:a.txt); python3 $(dirname $W)/index.py 100644 $A z.txt 100644 $A a.txt",
        ),
        (
            "an index naming a path twice",
            "A=$(g rev-parse HEAD:a.txt); python3 $(dirname $W)/index.py 100644 $A a.txt 100644 $A a.txt",
        ),
        (
            "an index with a file that is also a directory",
            "A=$(g rev-parse HEAD:a.txt); python3 $(dirname $W)/index.py 100644 $A a.txt 120000 $A lnk 100644 $A lnk/evil",
        ),
        (
            "an index entry naming a tree or a commit",
            "python3 $(dirname $W)/index.py 100644 $(g rev-parse HEAD:a.txt) a.txt \
             040000 $(g rev-parse HEAD^{tree}) d 100644 $(g rev-parse HEAD) e.txt",
        ),
        (
            "HEAD on a tag or a remote-tracking ref",
            "g update-ref refs/remotes/origin/master HEAD && \
             printf 'ref: refs/remotes/origin/master\\n' > .git/HEAD",
        ),
        ("notes shown under the host's commits", "g notes add -m 'approved: safe' HEAD"),
        (
            "more ref moves than a day's work",
            "h=$(g rev-parse HEAD); for i in $(seq 1200); do echo \"$h refs/heads/b$i\"; done >> .git/packed-refs",
        ),
        (
            "a ref to a commit stored under another name",
            "b=$(head -c 300000 /dev/urandom | g hash-object -w --stdin); \
             t=$(printf '100644 blob '$b'\\tbig\\n' | g mktree); c=$(g commit-tree $t -p HEAD -m x); \
             f=.git/objects/$(echo $c | cut -c1-2)/$(echo $c | cut -c3-); \
             mkdir -p .git/objects/ab && cp $f .git/objects/ab/0000000000000000000000000000000000000a && \
             echo ab0000000000000000000000000000000000000a > .git/refs/heads/wrong",
        ),
    ];
    for u in users() {
        for (what, attack) in attacks {
            let fx = Fixture::new(u, "gitbreak");
            fx.file("tools/chain.py", CHAIN, u);
            fx.file("tools/index.py", WRITE_INDEX, u);
            let w = fx.file("tools/w.py", WRITE_OBJECT, u);
            let tool = fx.path.join("tools");
            let proj = git_project(u, &fx);
            git(u, &proj, &["tag", "-a", "-m", "v1", "v1"]);
            let script = format!(
                "g() {{ git -c user.name=t -c user.email=t@e \"$@\"; }}; W={}; {attack}; echo done",
                w.display()
            );
            let o = committing(u, &proj, &tool, &script);
            assert_eq!(
                stdout(&o),
                "done\n",
                "as {}: {what}: {}",
                u.name,
                stderr(&o)
            );
            let mut c = as_user(u, "git");
            c.args(["fsck", "--strict", "--no-dangling", "--no-progress"])
                .current_dir(&proj)
                .env("HOME", &proj);
            let f = output(c);
            assert!(
                f.status.success() && stderr(&f).is_empty() && stdout(&f).is_empty(),
                "as {}: {what}: the host's fsck: {}{}\nsbx said: {}",
                u.name,
                stdout(&f),
                stderr(&f),
                stderr(&o)
            );
            // `git status` (a prompt runs it) writes nothing git's fsck refuses.
            git(u, &proj, &["status", "--porcelain"]);
            let f = output({
                let mut c = as_user(u, "git");
                c.args(["fsck", "--strict", "--no-dangling", "--no-progress"])
                    .current_dir(&proj)
                    .env("HOME", &proj);
                c
            });
            assert!(
                f.status.success() && stderr(&f).is_empty(),
                "as {}: {what}: after git status: {}",
                u.name,
                stderr(&f)
            );
            assert_eq!(
                stdout(&git(u, &proj, &["symbolic-ref", "HEAD"])),
                "refs/heads/master\n",
                "as {}: {what}",
                u.name
            );
            assert_eq!(
                stdout(&git(u, &proj, &["notes", "list"])),
                "",
                "as {}: {what}",
                u.name
            );
            // Nothing refused leaves a pack behind, whole or partial.
            let packs: Vec<String> = std::fs::read_dir(proj.join(".git/objects/pack"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(packs.is_empty(), "as {}: {what}: {packs:?} left", u.name);
            assert!(
                stdout(&git(u, &proj, &["branch", "--list", "b1*"])).is_empty(),
                "as {}: {what}",
                u.name
            );
            for args in [
                &["status", "--porcelain"][..],
                // What `git commit` does first: the index makes a tree.
                &["write-tree"],
                &["branch", "-a"],
                &["log", "--all", "--oneline"],
                &["for-each-ref"],
                &["show-ref", "-d"],
                &["describe", "--tags"],
            ] {
                git(u, &proj, args);
            }
            assert_eq!(
                stdout(&git(u, &proj, &["rev-parse", "v1^{}"])),
                stdout(&git(u, &proj, &["rev-parse", "master~0"])),
                "as {}: {what}: the tag v1 names another commit",
                u.name
            );
        }
    }
}

/// A branch another worktree has checked out is neither moved nor deleted from a
/// committing sandbox (git branch -f and -d refuse it as well): that worktree would
/// show changes nobody made, or no commits at all.
#[test]
fn a_branch_checked_out_elsewhere_stays_where_it_is() {
    for u in users() {
        let fx = Fixture::new(u, "gitwt");
        let proj = git_project(u, &fx);
        let wt = fx.path.join("wt");
        git(
            u,
            &proj,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "feature",
                wt.to_str().unwrap(),
            ],
        );
        let before = stdout(&git(u, &proj, &["rev-parse", "feature"]));
        let script = "g() { git -c user.name=t -c user.email=t@e \"$@\"; }; \
                      g commit -q --allow-empty -m mine && g update-ref refs/heads/feature HEAD && \
                      g update-ref -d refs/heads/feature; echo done";
        let mut c = sbx_cmd(u, ["--profile", "dev", "--", "sh", "-c", script]);
        c.current_dir(&proj).env("HOME", &u.home);
        let o = output(c);
        assert_eq!(stdout(&o), "done\n", "as {}: {}", u.name, stderr(&o));
        assert!(
            stderr(&o).contains("refs/heads/feature: a linked worktree has it checked out"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        assert_eq!(stdout(&git(u, &proj, &["rev-parse", "feature"])), before);
        // The sandbox's own commit on the main branch landed.
        assert_eq!(
            stdout(&git(u, &proj, &["log", "-1", "--format=%s"])),
            "mine\n"
        );
    }
}

/// `proj` in the fixture: a git repository holding `a.txt`, committed as "init".
fn git_project(u: &User, fx: &Fixture) -> std::path::PathBuf {
    let proj = fx.path.join("proj");
    std::fs::create_dir(&proj).unwrap();
    fx.chown(&proj, u);
    fx.file("proj/a.txt", "a\n", u);
    git(u, &proj, &["init", "-q"]);
    git(u, &proj, &["add", "-A"]);
    git(u, &proj, &["commit", "-q", "-m", "init"]);
    proj
}

/// `sh -c script` under `dev --vcs commit` in `proj`, with `tool` (a helper script
/// outside the project) bound read-only.
fn committing(u: &User, proj: &Path, tool: &Path, script: &str) -> std::process::Output {
    let tool = tool.to_str().unwrap();
    in_home(
        u,
        &u.home,
        proj,
        &[
            "--profile",
            "dev",
            "--vcs",
            "commit",
            "--ro-bind",
            tool,
            "--",
            "sh",
            "-c",
            script,
        ],
    )
}

/// Adds an entry (mode, object id, path) to a git index, sorted, checksum
/// recomputed: git's own commands refuse the paths this test needs.
const ADD_ENTRY: &str = r#"
import hashlib, struct, sys
p, mode, oid, path = sys.argv[1] + "/index", int(sys.argv[2], 8), bytes.fromhex(sys.argv[3]), sys.argv[4].encode()
b = open(p, "rb").read()
n = struct.unpack(">I", b[8:12])[0]
i, ents = 12, []
for _ in range(n):
    flags = struct.unpack(">H", b[i + 60:i + 62])[0]
    nl = flags & 0xfff
    ln = (62 + nl + 8) // 8 * 8
    ents.append((b[i + 62:i + 62 + nl], b[i:i + ln]))
    i += ln
e = bytearray(40 + 20 + 2)
struct.pack_into(">I", e, 24, mode)
e[40:60] = oid
struct.pack_into(">H", e, 60, len(path))
e += path
e += b"\0" * ((62 + len(path) + 8) // 8 * 8 - len(e))
ents.append((path, bytes(e)))
ents.sort()
out = bytearray(b"DIRC" + struct.pack(">II", 2, len(ents)))
for _, raw in ents:
    out += raw
out += hashlib.sha1(out).digest()
open(p + ".new", "wb").write(out)
import os; os.rename(p + ".new", p)
"#;

/// What a sandbox under `--vcs commit` writes to the host's git data is checked
/// before the host's git reads it: each case is one way to have the host's git run,
/// write, hang or hide something.
#[test]
fn git_data_a_committing_sandbox_writes_is_checked_first() {
    for u in users() {
        let fx = Fixture::new(u, "gitdata");
        let mark = fx.path.join("pwned");
        let victim = fx.file("victim.txt", "untouched\n", u);
        let add = fx.file("add.py", ADD_ENTRY, u);
        let proj = git_project(u, &fx);
        let sandbox = |script: &str| {
            let script = format!(
                "set -e; g() {{ git -c user.name=t -c user.email=t@e \"$@\"; }}; {script}; echo done"
            );
            let o = committing(u, &proj, &add, &script);
            assert_eq!(
                stdout(&o),
                "done\n",
                "as {}: {script}: {}",
                u.name,
                stderr(&o)
            );
            stderr(&o)
        };
        let blob = |text: &str, write: bool| {
            let mut c = as_user(u, "git");
            c.args(["hash-object", "--stdin"])
                .args(write.then_some("-w"))
                .current_dir(&proj)
                .env("HOME", &proj)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            String::from_utf8(child.wait_with_output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string()
        };
        let hook = blob(&format!("#!/bin/sh\ntouch {}\n", mark.display()), true);
        // 1. Index paths git would check out into .git or outside the work tree.
        for path in [
            ".git/hooks/pre-commit",
            ".GIT./hooks/x",
            "../escape",
            "a/../../b",
        ] {
            let err = sandbox(&format!(
                "python3 {} .git 100755 {hook} '{path}'",
                add.display()
            ));
            assert!(
                err.contains("the index from the sandbox not kept")
                    && err.contains("a path git must not check out"),
                "as {}: {path}: {err}",
                u.name
            );
            assert!(!stdout(&git(u, &proj, &["ls-files"])).contains("escape"));
        }
        // 2. A submodule the host never had (its repository runs its own config in
        //    the host's `git status`).
        let err = sandbox(&format!(
            "mkdir -p deep/er/sub && cd deep/er/sub && g init -q && \
             g config core.fsmonitor 'touch {m}; false' && g -c core.fsmonitor= commit -q --allow-empty -m x && \
             h=$(g -c core.fsmonitor= rev-parse HEAD) && cd ../../.. && \
             g update-index --add --cacheinfo 160000,$h,deep/er/sub",
            m = mark.display()
        ));
        assert!(
            err.contains("a new submodule at \"deep/er/sub\""),
            "as {}: {err}",
            u.name
        );
        git(u, &proj, &["status", "--short"]);
        assert!(
            !mark.exists(),
            "as {}: a planted submodule's config ran",
            u.name
        );
        std::fs::remove_dir_all(proj.join("deep")).unwrap();
        // 3. Refs and reflogs: a legitimate commit lands and is reported; a
        //    symlink or FIFO (git would write through or block on it), a replace
        //    ref (it changes what git log shows), a ref to an object the host does
        //    not have, and a branch moved to a commit whose tree checks out into
        //    .git/hooks do not reach the host.
        let before = stdout(&git(u, &proj, &["rev-parse", "HEAD"]));
        let err = sandbox(&format!(
            "g commit -q --allow-empty -m legit && \
             rm -f .git/logs/HEAD && ln -s {v} .git/logs/HEAD && mkfifo .git/refs/heads/fifo && \
             ln -s {v} .git/refs/heads/link && mkdir -p .git/refs/replace && \
             g rev-parse HEAD > .git/refs/replace/$(g rev-parse HEAD~1) && \
             echo 0123456789012345678901234567890123456789 > .git/refs/heads/ghost && \
             t=$(printf '100755 blob {hook}\\tpost-checkout\\n' | g mktree) && \
             t=$(printf '040000 tree '$t'\\thooks\\n' | g mktree) && \
             t=$(printf '040000 tree '$t'\\t.git\\n' | g mktree --missing) && \
             g update-ref refs/heads/evil $(g commit-tree $t -p HEAD -m evil)",
            v = victim.display()
        ));
        let log = stdout(&git(u, &proj, &["log", "--format=%s", "-2"]));
        assert_eq!(log, "legit\ninit\n", "as {}: {err}", u.name);
        assert!(
            err.contains(&format!("git in {}", proj.join(".git").display()))
                && err.contains(&format!("refs/heads/master {}", &before[..7])),
            "as {}: the move is not reported: {err}",
            u.name
        );
        for (what, why) in [
            (
                "refs/replace/",
                "replace refs and notes change what git log",
            ),
            ("refs/heads/ghost: git refused its objects", "not our ref"),
            ("refs/heads/evil: git refused its objects", "hasDotgit"),
        ] {
            assert!(
                err.contains(what) && err.contains(why),
                "as {}: {what}: {err}",
                u.name
            );
        }
        for p in [
            "refs/heads/fifo",
            "refs/heads/link",
            "refs/replace",
            "refs/heads/ghost",
            "refs/heads/evil",
        ] {
            let m = std::fs::symlink_metadata(proj.join(".git").join(p));
            assert!(m.is_err(), "as {}: .git/{p} reached the host", u.name);
        }
        // The host's git wrote the reflogs (the symlink the sandbox put at
        // logs/HEAD stayed in the sandbox).
        let reflog = std::fs::read_to_string(proj.join(".git/logs/refs/heads/master")).unwrap();
        assert!(
            std::fs::read_to_string(proj.join(".git/logs/HEAD"))
                .unwrap()
                .ends_with("commit: legit\n"),
            "as {}",
            u.name
        );
        assert!(
            reflog.ends_with("commit: legit\n"),
            "as {}: {reflog}",
            u.name
        );
        git(u, &proj, &["commit", "-q", "--allow-empty", "-m", "host"]);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
        // 4. The host's objects are read-only inside; an object written inside
        //    under the name of the host's commit (git reads its own store first), a
        //    commit-graph, a pack and an object nothing names stay out: only what a
        //    moved ref or the index needs is fetched.
        let head = stdout(&git(u, &proj, &["rev-parse", "HEAD"]))
            .trim()
            .to_string();
        let err = sandbox(&format!(
            "if (echo x > .git/{h}/pack/p) 2>/dev/null; then echo WROTE; fi; \
             o=$(echo genuine | g hash-object -w --stdin); \
             f=.git/objects/$(echo {head} | cut -c1-2)/$(echo {head} | cut -c3-); \
             mkdir -p $(dirname $f) && python3 -c 'import zlib,sys; open(sys.argv[1],\"wb\").write(zlib.compress(b\"blob 5\\0forge\"))' $f; \
             g commit-graph write --reachable; g repack -q -a -n; echo $o > /dev/null",
            h = "sbx-host-objects",
        ));
        assert!(!err.contains("WROTE"), "as {}: {err}", u.name);
        let mut c = as_user(u, "git");
        c.args(["cat-file", "-t", &head])
            .current_dir(&proj)
            .env("HOME", &proj);
        assert_eq!(
            stdout(&output(c)),
            "commit\n",
            "as {}: the host's commit",
            u.name
        );
        assert!(!proj.join(".git/objects/info/commit-graph").exists());
        let genuine = blob("genuine\n", false);
        let mut c = as_user(u, "git");
        c.args(["cat-file", "-e", &genuine])
            .current_dir(&proj)
            .env("HOME", &proj);
        assert!(
            !output(c).status.success(),
            "as {}: an object nothing names came in",
            u.name
        );
        let mut c = as_user(u, "git");
        c.args(["fsck", "--no-dangling"])
            .current_dir(&proj)
            .env("HOME", &proj);
        let o = output(c);
        assert!(o.status.success(), "as {}: {}", u.name, stderr(&o));
        assert!(!mark.exists());
    }
}

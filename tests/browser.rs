//! `--profile browser` with the real browsers, as the test users: headless
//! screenshots of a page served on the sandbox's own loopback, saved into Downloads
//! and checked pixel by pixel on the host; Firefox in a real X11 window under Xvfb;
//! the browsers' own sandboxes (content processes in user namespaces of their own);
//! and what the profile keeps out of reach.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One real browser at a time: on a small CI machine, several starting together
/// (each a dozen processes) left Firefox's kiosk window unpainted past its deadline.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

fn have(bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    skip(
        Lacking::Setup,
        &format!("{bin} is missing (tests/setup.sh installs firefox-esr, chromium, xvfb)"),
    );
    false
}

/// The page: one solid colour, served inside the sandbox on 127.0.0.1:8000.
const SERVE: &str = "mkdir -p /tmp/www && printf '<html><body style=\"margin:0;background:#%s\">sbx</body></html>' \"$COLOUR\" > /tmp/www/index.html && \
                     cd /tmp/www && python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 & \
                     for i in $(seq 200); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8000))' 2>/dev/null && break; done";

/// The (r, g, b) at the centre of a PNG, decoded by a few lines of Python (zlib and
/// the five PNG filters), on the host.
fn png_centre(path: &Path) -> (u8, u8, u8) {
    let script = r#"
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
i, idat = 8, b''
while i < len(d):
    n, = struct.unpack('>I', d[i:i+4]); t = d[i+4:i+8]; c = d[i+8:i+8+n]; i += 12 + n
    if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])
    if t == b'IDAT': idat += c
raw = zlib.decompress(idat); bpp = {2: 3, 6: 4}[ct]; stride = w * bpp
prev = bytearray(stride); p = 0
for y in range(h // 2 + 1):
    f = raw[p]; line = bytearray(raw[p + 1:p + 1 + stride]); p += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + ((a + b) >> 1)) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
x = w // 2
print(*prev[x * bpp:x * bpp + 3])
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<u8> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

/// The user's Downloads directory, fresh, and a planted key and document.
fn prepare_home(u: &User) -> PathBuf {
    let dl = u.home.join("Downloads");
    let _ = std::fs::remove_dir_all(&dl);
    for (d, f, text) in [
        (u.home.join(".ssh"), "id_ed25519", "PRIVATE KEY"),
        (u.home.join("Documents"), "tax.txt", "secret document"),
    ] {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(f), text).unwrap();
        if is_root() {
            for p in [d.clone(), d.join(f)] {
                std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
            }
        }
    }
    std::fs::create_dir_all(&dl).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&dl, Some(u.uid), Some(u.gid)).unwrap();
    }
    dl
}

/// The browsers' own directories the profile grants, made on first use.
const BROWSER_DIRS: [&str; 5] = [
    ".config/mozilla",
    ".cache/mozilla",
    ".config/chromium",
    ".cache/chromium",
    ".mozilla",
];

/// Every path under `dir` (recursively), with its size and mtime.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, (u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.insert(e.path(), (m.size(), m.mtime()));
        }
    }
    out
}

fn screenshot_into_downloads(u: &User, colour: &str, shoot: &str) -> (u8, u8, u8) {
    let dl = prepare_home(u);
    let before = tree(&u.home);
    let script = format!(
        "{SERVE}; {shoot} >/tmp/log 2>&1 || cat /tmp/log; \
         cat ~/.ssh/id_ed25519 2>/dev/null || echo no-key; ls ~/Documents 2>/dev/null || echo no-documents"
    );
    let mut c = sbx_cmd(
        u,
        [
            "-q",
            "--profile",
            "browser",
            "--setenv",
            &format!("COLOUR={colour}"),
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    c.current_dir(&u.home);
    let o = output(c);
    assert_eq!(code(&o), 0, "as {}: {}{}", u.name, stdout(&o), stderr(&o));
    assert!(
        stdout(&o).ends_with("no-key\nno-documents\n"),
        "as {}: {}",
        u.name,
        stdout(&o)
    );
    let png = dl.join("shot.png");
    assert!(
        png.exists(),
        "as {}: no screenshot in Downloads: {}",
        u.name,
        stdout(&o)
    );
    // Nothing of home changed but what the profile grants: Downloads and the
    // browsers' own profile and cache directories (made on first use).
    let granted = |p: &Path| {
        p.starts_with(&dl)
            || BROWSER_DIRS.iter().any(|d| p.starts_with(u.home.join(d)))
            || [".config", ".cache"].iter().any(|d| p == u.home.join(d))
    };
    let mut after = tree(&u.home);
    after.retain(|p, _| !granted(p));
    let mut before = before;
    before.retain(|p, _| !granted(p));
    assert_eq!(
        before, after,
        "as {}: home changed outside Downloads",
        u.name
    );
    png_centre(&png)
}

#[test]
fn firefox_headless_screenshot_into_downloads() {
    let _one = one_browser();
    if !have("/usr/bin/firefox-esr") || !have("/usr/bin/pasta") {
        return;
    }
    for u in users() {
        let rgb = screenshot_into_downloads(
            u,
            "00c000",
            "firefox-esr --headless --window-size 400,300 --screenshot $HOME/Downloads/shot.png http://127.0.0.1:8000/",
        );
        assert_eq!(rgb, (0, 0xc0, 0), "as {}", u.name);
    }
}

#[test]
fn chromium_headless_screenshot_into_downloads() {
    let _one = one_browser();
    if !have("/usr/bin/chromium") || !have("/usr/bin/pasta") {
        return;
    }
    for u in users() {
        let rgb = screenshot_into_downloads(
            u,
            "0000d0",
            "chromium --headless --window-size=400,300 --screenshot=$HOME/Downloads/shot.png http://127.0.0.1:8000/",
        );
        assert_eq!(rgb, (0, 0, 0xd0), "as {}", u.name);
    }
}

/// The browsers' own sandboxes work inside sbx's: their content processes run in
/// user namespaces of their own.
#[test]
fn browser_content_processes_get_their_own_user_namespaces() {
    let _one = one_browser();
    if !have("/usr/bin/firefox-esr") || !have("/usr/bin/chromium") || !have("/usr/bin/pasta") {
        return;
    }
    let find = |marker: &str, start: &str| {
        format!(
            "{start} >/dev/null 2>&1 & me=$(readlink /proc/self/ns/user); found=none; \
             for i in $(seq 600); do for p in /proc/[0-9]*; do \
               if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- '{marker}'; then \
                 u=$(readlink $p/ns/user 2>/dev/null) && found=$([ \"$u\" != \"$me\" ] && echo own || echo shared); fi; \
             done; [ $found = own ] && break; done; echo $found; kill %1 2>/dev/null; wait"
        )
    };
    for u in users() {
        for (name, script) in [
            (
                "firefox",
                find(
                    "-contentproc",
                    "firefox-esr --headless --screenshot /tmp/x.png about:blank",
                ),
            ),
            (
                "chromium",
                find(
                    "--type=renderer",
                    "chromium --headless --screenshot=/tmp/x.png about:blank",
                ),
            ),
        ] {
            let mut c = sbx_cmd(u, ["-q", "--profile", "browser", "--", "sh", "-c", &script]);
            c.current_dir(&u.home);
            let o = output(c);
            assert_eq!(
                stdout(&o),
                "own\n",
                "as {} with {name}: {}",
                u.name,
                stderr(&o)
            );
        }
    }
}

/// Xvfb's framebuffer read from the host: the pixel at the centre of the screen.
fn x_centre(display: &str, xauthority: &Path) -> Option<(u8, u8, u8)> {
    let o = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .env("XAUTHORITY", xauthority)
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let d = o.stdout;
    let be = |i: usize| u32::from_be_bytes(d[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
    let (header, width, height, byte_order, bpl, ncolors) =
        (be(0), be(4), be(5), be(7), be(12), be(19));
    // Depth 24 is stored in 32-bit pixels (bits_per_pixel may say 24).
    if width == 0 || bpl / width != 4 {
        return None;
    }
    let off = header + ncolors * 12 + (height / 2) * bpl + (width / 2) * 4;
    let px: [u8; 4] = d.get(off..off + 4)?.try_into().ok()?;
    let _ = byte_order;
    // The three colour bytes in memory order; the caller's colour has distinct
    // channel values and is matched whatever their order (Xvfb's visual and xwd's
    // header do not agree on it).
    Some((px[0], px[1], px[2]))
}

/// The page's colour #c08040, its channels in any order.
fn is_page(px: Option<(u8, u8, u8)>) -> bool {
    px.is_some_and(|(a, b, c)| {
        let mut v = [a, b, c];
        v.sort();
        v == [0x40, 0x80, 0xc0]
    })
}

#[test]
fn firefox_in_an_x11_window_under_xvfb() {
    let _one = one_browser();
    if !have("/usr/bin/firefox-esr")
        || !have("/usr/bin/Xvfb")
        || !have("/usr/bin/xwd")
        || !have("/usr/bin/xauth")
        || !have("/usr/bin/pasta")
    {
        return;
    }
    for (i, u) in users().iter().enumerate() {
        let n = 90 + i + (std::process::id() as usize % 100) * 2;
        let display = format!(":{n}");
        // The display requires a cookie; the user's Xauthority also holds a decoy
        // display's, which must not reach the sandbox.
        let fx = Fixture::new(u, "xauth");
        let xauthority = fx.path.join("Xauthority");
        // A home of its own: the browser's profile persists, and a Firefox stopped by
        // a signal leaves its lock behind (hostname:pid, which a fresh pid namespace
        // may hand out again), so each run starts from a clean one.
        let home = fx.path.join("home");
        std::fs::create_dir(&home).unwrap();
        fx.chown(&home, u);
        let cookie = format!("5b5{:029x}", std::process::id() as u128 * 1000 + i as u128);
        for (d, c) in [
            (display.as_str(), cookie.as_str()),
            (":3", "0123456789abcdef0123456789abcdef"),
        ] {
            let mut add = as_user(u, "xauth");
            add.arg("-f").arg(&xauthority).args(["add", d, ".", c]);
            let o = output(add);
            assert!(o.status.success(), "xauth add: {}", stderr(&o));
        }
        let mut xvfb = as_user(u, "Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
                "-auth",
            ])
            .arg(&xauthority)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while x_centre(&display, &xauthority).is_none() {
            assert!(Instant::now() < deadline, "Xvfb {display} did not start");
            std::thread::yield_now();
        }
        // Inside: the display's own cookie only, for any hostname (FamilyWild).
        let mut list = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                "browser",
                "--",
                "sh",
                "-c",
                "xauth -f \"$XAUTHORITY\" list",
            ],
        );
        list.env("DISPLAY", &display)
            .env("XAUTHORITY", &xauthority)
            .env("HOME", &home)
            .current_dir(&home);
        let o = output(list);
        assert_eq!(
            stdout(&o),
            format!("#ffff##:{n}  MIT-MAGIC-COOKIE-1  {cookie}\n"),
            "as {}: {}",
            u.name,
            stderr(&o)
        );
        let script = format!("{SERVE}; exec firefox-esr --kiosk http://127.0.0.1:8000/");
        let mut c = sbx_cmd(
            u,
            [
                "-q",
                "--profile",
                "browser",
                "--setenv",
                "COLOUR=c08040",
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        c.env("DISPLAY", &display)
            .env("XAUTHORITY", &xauthority)
            .env("HOME", &home)
            .current_dir(&home);
        let mut ff = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The window is drawn when the framebuffer's centre turns the page's colour.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = None;
        while Instant::now() < deadline {
            seen = x_centre(&display, &xauthority);
            if is_page(seen) {
                break;
            }
        }
        // SIGTERM: sbx passes it on, Firefox quits and the sandbox's record goes too.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(ff.id() as i32, libc::SIGTERM) };
        let _ = ff.wait();
        let alive = xvfb.try_wait().unwrap().is_none();
        let _ = xvfb.kill();
        let _ = xvfb.wait();
        assert!(
            is_page(seen),
            "as {}: the page never showed on {display} (Xvfb alive: {alive}): {seen:?}",
            u.name
        );
    }
}

/// Abstractions are optional by presence, and `-v` says what was left out.
#[test]
fn missing_desktop_pieces_are_skipped_and_listed_under_v() {
    if !have("/usr/bin/pasta") {
        return;
    }
    for u in users() {
        let mut c = sbx_cmd(u, ["-v", "--profile", "browser", "--", "true"]);
        c.current_dir(&u.home);
        let o = output(c);
        assert_eq!(code(&o), 0, "as {}: {}", u.name, stderr(&o));
        let err = stderr(&o);
        for piece in ["builtin:wayland", "builtin:x11", "builtin:pulseaudio"] {
            assert!(
                err.lines()
                    .any(|l| l.contains("skipped: ") && l.contains(piece)),
                "as {}: {piece} not listed: {err}",
                u.name
            );
        }
        assert!(err.contains("dbus: no session bus here"), "{err}");
    }
}

/// The browser's profile persists: run 1 starts the browser with nothing set up
/// (sbx makes its directories), run 2 finds what the browser itself wrote in run 1,
/// and nothing else of the home was touched.
fn profile_persists(browser: &str, profile_dir: &str, marker: &str) {
    for u in users() {
        let fx = Fixture::new(u, "persist");
        let home = fx.path.clone();
        fx.file("Documents/tax.txt", "secret document", u);
        fx.file(".ssh/id_ed25519", "PRIVATE KEY", u);
        let before = tree(&home);
        let shoot = match browser {
            "firefox-esr" => "firefox-esr --headless --window-size 400,300 --screenshot /tmp/shot.png about:blank",
            // Headless Chromium keeps a throw-away profile unless told where its own
            // is: the directory a desktop Chromium uses.
            _ => "chromium --headless --no-first-run --user-data-dir=$HOME/.config/chromium --screenshot=/tmp/shot.png about:blank",
        };
        let run_browser = |list: &str| {
            let mut c = sbx_cmd(
                u,
                [
                    "-q",
                    "--profile",
                    "browser",
                    "--net",
                    "none",
                    "--",
                    "sh",
                    "-c",
                    &format!("{list}; {shoot} >/tmp/log 2>&1 || cat /tmp/log"),
                ],
            );
            c.env("HOME", &home).current_dir(&home);
            let o = output(c);
            assert_eq!(code(&o), 0, "as {}: {}{}", u.name, stdout(&o), stderr(&o));
            stdout(&o)
        };
        // Run 1: nothing there yet; the browser makes its profile.
        run_browser("true");
        let written: Vec<PathBuf> = tree(&home.join(profile_dir))
            .into_keys()
            .filter(|p| p.file_name().is_some_and(|n| n == marker))
            .collect();
        assert!(
            !written.is_empty(),
            "as {}: {browser} wrote no {marker} under {profile_dir}",
            u.name
        );
        // Run 2: the browser's own file from run 1 is there, and it makes no new
        // profile beside it.
        let seen = run_browser(&format!("find ~/{profile_dir} -name '{marker}'"));
        for w in &written {
            assert!(
                seen.contains(&w.display().to_string()),
                "as {}: run 2 does not see {}: {seen}",
                u.name,
                w.display()
            );
        }
        let again: Vec<PathBuf> = tree(&home.join(profile_dir))
            .into_keys()
            .filter(|p| p.file_name().is_some_and(|n| n == marker))
            .collect();
        assert_eq!(again, written, "as {}: a second profile was made", u.name);
        // Nothing else of the home changed.
        let granted = |p: &Path| {
            BROWSER_DIRS.iter().any(|d| p.starts_with(home.join(d)))
                || [".config", ".cache", "Downloads"]
                    .iter()
                    .any(|d| p == home.join(d))
        };
        let mut after = tree(&home);
        after.retain(|p, _| !granted(p));
        let mut before = before;
        before.retain(|p, _| !granted(p));
        assert_eq!(
            before, after,
            "as {}: home changed outside the browser's directories",
            u.name
        );
    }
}

#[test]
fn firefox_keeps_its_profile_between_runs() {
    let _one = one_browser();
    if !have("/usr/bin/firefox-esr") {
        return;
    }
    // times.json: written by Firefox when it makes a profile (its creation time).
    profile_persists("firefox-esr", ".config/mozilla/firefox", "times.json");
}

#[test]
fn chromium_keeps_its_profile_between_runs() {
    let _one = one_browser();
    if !have("/usr/bin/chromium") {
        return;
    }
    // Local State: written by Chromium for its user data directory.
    profile_persists("chromium", ".config/chromium", "Local State");
}

/// The shipped launchers are valid desktop entries that start the browser through
/// sbx's browser profile.
#[test]
fn desktop_launchers_start_the_browser_sandboxed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("desktop");
    for (file, browser) in [
        ("sbx-firefox.desktop", "firefox-esr"),
        ("sbx-chromium.desktop", "chromium"),
    ] {
        let path = dir.join(file);
        let o = Command::new("desktop-file-validate")
            .arg(&path)
            .output()
            .expect("desktop-file-validate (desktop-file-utils): tests/setup.sh installs it");
        assert!(
            o.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let exec = text.lines().find_map(|l| l.strip_prefix("Exec=")).unwrap();
        assert!(
            exec.starts_with(&format!("sbx --profile browser -- {browser} ")),
            "{file}: {exec}"
        );
        assert!(
            Path::new("/usr/bin").join(browser).exists() || !have(&format!("/usr/bin/{browser}"))
        );
    }
}

//! The Debian package: its metadata names what a user needs (uidmap) and what makes
//! sbx complete (passt, xdg-dbus-proxy), every file it installs exists, and, with
//! cargo-deb present (tests/setup.sh installs it), it is built and unpacked into a
//! throwaway root where the installed sbx runs and its files sit where each tool
//! looks for them.

mod common;

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn metadata() -> toml::Table {
    let cargo: toml::Table = std::fs::read_to_string(format!("{ROOT}/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    cargo["package"]["metadata"]["deb"]
        .as_table()
        .unwrap()
        .clone()
}

/// Where each shipped file goes, by source.
fn assets(deb: &toml::Table) -> Vec<(String, String)> {
    deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_package_metadata_names_its_dependencies_and_files() {
    let deb = metadata();
    assert!(deb["depends"].as_str().unwrap().contains("uidmap"));
    let rec = deb["recommends"].as_str().unwrap();
    assert!(
        rec.contains("passt") && rec.contains("xdg-dbus-proxy") && rec.contains("git"),
        "{rec}"
    );
    let assets = assets(&deb);
    for (src, _) in &assets {
        if !src.starts_with("target/") {
            assert!(Path::new(ROOT).join(src).exists(), "{src} is missing");
        }
    }
    for needed in [
        "man/sbx.1",
        "man/sbx-profile.5",
        "completions/sbx.bash",
        "completions/_sbx",
        "completions/sbx.fish",
        "packaging/apparmor/sbx",
        "desktop/sbx-firefox.desktop",
        "desktop/sbx-chromium.desktop",
    ] {
        assert!(
            assets.iter().any(|(s, _)| s == needed),
            "{needed} is not shipped"
        );
    }
}

#[test]
fn the_package_builds_and_installs_into_a_throwaway_root() {
    let cargo_deb = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/bin/cargo-deb"))
        .filter(|p| p.exists())
        .or_else(|| {
            Some(Path::new("/root/.cargo/bin/cargo-deb").to_path_buf()).filter(|p| p.exists())
        });
    if cargo_deb.is_none() {
        common::skip(
            common::Lacking::Setup,
            "cargo-deb is missing (cargo install cargo-deb --locked)",
        );
        return;
    }
    let work = std::env::temp_dir().join(format!("sbx-deb-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    // The static target .cargo/config.toml builds for by default.
    let config: toml::Table = std::fs::read_to_string(format!("{ROOT}/.cargo/config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let target = config["build"]["target"].as_str().unwrap().to_string();
    // Its own target directory: the one of this `cargo test` is locked by it.
    let o = std::process::Command::new("cargo")
        .args(["deb", "--target", &target, "--output"])
        .arg(&work)
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deb = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");
    let field = |name: &str| {
        let o = std::process::Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert!(field("Depends").contains("uidmap"), "{}", field("Depends"));
    assert!(field("Recommends").contains("passt"));
    let root = work.join("root");
    let o = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success());
    for f in [
        "usr/bin/sbx",
        "usr/share/man/man1/sbx.1.gz",
        "usr/share/man/man5/sbx-profile.5.gz",
        "usr/share/bash-completion/completions/sbx",
        "usr/share/zsh/vendor-completions/_sbx",
        "usr/share/fish/vendor_completions.d/sbx.fish",
        "etc/apparmor.d/sbx",
        "usr/share/applications/sbx-firefox.desktop",
    ] {
        assert!(root.join(f).exists(), "{f} is not in the package");
    }
    // The installed binary runs, is static (no loader at each launch), and prints
    // the completions it ships.
    let sbx = root.join("usr/bin/sbx");
    let o = std::process::Command::new(&sbx)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sbx "));
    let elf = std::fs::read(&sbx).unwrap();
    assert!(
        !has_interpreter(&elf),
        "the packaged sbx is dynamically linked"
    );
    let o = std::process::Command::new(&sbx)
        .args(["--completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(
        o.stdout,
        std::fs::read(root.join("usr/share/bash-completion/completions/sbx")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Whether a 64-bit little-endian ELF file asks for a program interpreter (a
/// PT_INTERP program header: the dynamic loader), as a dynamically linked one does.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a 64-bit little-endian ELF");
    let u16_at = |i: usize| u16::from_le_bytes(elf[i..i + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn the_interpreter_check_tells_dynamic_from_static() {
    // /bin/sh is dynamically linked on every Debian.
    assert!(has_interpreter(&std::fs::read("/bin/sh").unwrap()));
}

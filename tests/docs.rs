//! The generated documents are current: man/sbx.1 (title, synopsis and options from
//! the command-line definitions by clap_mangen, the rest from man/sbx.1.in) and the
//! completion scripts in completions/. `SBX_BLESS=1 cargo test --test docs` writes
//! them.

mod common;

use clap::CommandFactory;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn bless() -> bool {
    std::env::var_os("SBX_BLESS").is_some()
}

/// Compare `made` with the committed file at `rel` (or write it when blessing).
fn current(rel: &str, made: &[u8]) {
    let path = format!("{ROOT}/{rel}");
    if bless() {
        std::fs::write(&path, made).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == made,
        "{rel} is not what the command line generates: run `SBX_BLESS=1 cargo test --test docs` \
         and commit the result"
    );
}

fn man_page() -> Vec<u8> {
    let template = std::fs::read_to_string(format!("{ROOT}/man/sbx.1.in")).unwrap();
    let man = clap_mangen::Man::new(sbx::cli::Cli::command())
        .date("")
        .source(format!("sbx {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    let mut header = Vec::new();
    man.render_title(&mut header).unwrap();
    man.render_name_section(&mut header).unwrap();
    man.render_synopsis_section(&mut header).unwrap();
    let mut options = Vec::new();
    man.render_options_section(&mut options).unwrap();
    let options = String::from_utf8(options).unwrap();
    // Each render starts with roff's own preamble (the quote-string definitions),
    // already in the header: the options go from their heading.
    let (_, items) = options.split_once(".SH OPTIONS\n").unwrap();
    let heading = ".SH OPTIONS";
    let (before, rest) = template.split_once(".\\\" @OPTIONS@").unwrap();
    let (_, rest) = rest.split_once('\n').unwrap();
    let (intro, after) = rest.split_once(".\\\" @OPTIONS-END@\n").unwrap();
    let before = before.replace(".\\\" @HEADER@\n", &String::from_utf8(header).unwrap());
    format!("{before}{heading}\n{intro}{items}{after}").into_bytes()
}

#[test]
fn the_man_page_is_generated_from_the_command_line() {
    let page = man_page();
    let text = String::from_utf8_lossy(&page);
    // What the generator brings: every long option, with its long help.
    for arg in sbx::cli::Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                text.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                "--{long} is not in the generated page"
            );
        }
    }
    assert!(text.contains("\\fBcommit\\fR") || text.contains("commit:"));
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(text.contains(&format!(".SH {section}")), "no {section}");
    }
    current("man/sbx.1", &page);
}

#[test]
fn the_completions_are_generated_from_the_command_line() {
    for (shell, rel) in [
        (clap_complete::Shell::Bash, "completions/sbx.bash"),
        (clap_complete::Shell::Zsh, "completions/_sbx"),
        (clap_complete::Shell::Fish, "completions/sbx.fish"),
    ] {
        let script = sbx::cli::completions(shell);
        let text = String::from_utf8_lossy(&script);
        for long in ["profile", "vcs", "net", "completions", "doctor"] {
            assert!(
                text.contains(&format!("--{long}")) || text.contains(&format!("-l {long} ")),
                "{shell}: no --{long}"
            );
        }
        current(rel, &script);
    }
}

/// `sbx --completions SHELL` prints the same scripts, and bash loads the one it
/// prints: completing `sbx --pro` offers --profile and --profiles.
#[test]
fn sbx_prints_completions_that_bash_loads() {
    let sbx = env!("CARGO_BIN_EXE_sbx");
    let o = std::process::Command::new(sbx)
        .args(["--completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, sbx::cli::completions(clap_complete::Shell::Bash));
    let script = format!(
        "source <({sbx} --completions bash); COMP_WORDS=(sbx --pro); COMP_CWORD=1; \
         _sbx sbx --pro sbx; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let o = std::process::Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&o.stdout);
    assert!(
        got.lines().any(|l| l == "--profile") && got.lines().any(|l| l == "--profiles"),
        "{got:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = std::process::Command::new(sbx)
        .args(["--completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "an unknown shell is an error");
}

/// The AppArmor profile parses with apparmor_parser (package apparmor). Debian 12's
/// parser (3.0) predates the `userns` rule and the 4.0 ABI: there, the rest of the
/// profile is parsed and the skip is said; a 4.x parser checks all of it.
#[test]
fn the_apparmor_profile_parses() {
    let parser = ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(parser) = parser else {
        common::skip(
            common::Lacking::Setup,
            "apparmor_parser is missing (package apparmor)",
        );
        return;
    };
    let profile = std::fs::read_to_string(format!("{ROOT}/packaging/apparmor/sbx")).unwrap();
    assert!(profile.contains("\nabi <abi/4.0>,\n"));
    assert!(profile.contains("profile sbx /usr/bin/sbx flags=(unconfined) {\n  userns,\n"));
    let parse = |text: &str| {
        let dir = std::env::temp_dir().join(format!("sbx-apparmor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sbx");
        std::fs::write(&file, text).unwrap();
        // -Q: parse and compile only, load nothing; -K: no cache.
        let o = std::process::Command::new(parser)
            .args(["-Q", "-K", "-T"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        o
    };
    let modern = std::path::Path::new("/etc/apparmor.d/abi/4.0").exists();
    let text = if modern {
        profile.clone()
    } else {
        common::skip(
            common::Lacking::Kernel,
            "this apparmor_parser predates ABI 4.0 and the userns rule: the rest of the \
             profile is parsed",
        );
        profile
            .replace("abi <abi/4.0>,\n", "")
            .replace("  userns,\n", "")
    };
    let o = parse(&text);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // And the parser does refuse a broken profile (the check is not vacuous).
    let o = parse(&text.replace("flags=(unconfined) {", "flags=(unconfined) "));
    assert!(!o.status.success());
}

//! Profile parsing, lookup and merging, without privileges.

use std::path::PathBuf;

use super::schema::MountKind;
use super::*;

/// A scratch pair of user/system profile directories, removed on drop.
struct Dirs {
    root: PathBuf,
    locs: Locations,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("sbx-profile-test-{tag}-{}-{n}", std::process::id()));
        let locs = Locations {
            user: root.join("user"),
            system: root.join("system"),
        };
        std::fs::create_dir_all(&locs.user).unwrap();
        std::fs::create_dir_all(&locs.system).unwrap();
        Dirs { root, locs }
    }

    fn user(&self, name: &str, text: &str) -> PathBuf {
        let p = self.locs.user.join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn system(&self, name: &str, text: &str) {
        std::fs::write(self.locs.system.join(format!("{name}.toml")), text).unwrap();
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn err(d: &Dirs, name: &str) -> String {
    resolve(name, &d.locs, None).unwrap_err().to_string()
}

#[test]
fn every_builtin_profile_parses_and_resolves() {
    let d = Dirs::new("builtin");
    for (name, _) in BUILTIN {
        let r = resolve(name, &d.locs, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.description.is_some(), "{name} has a description");
        assert_eq!(r.files.last().unwrap(), &format!("builtin:{name}"));
    }
}

#[test]
fn errors_name_file_line_and_column() {
    let d = Dirs::new("errors");
    let cases = [
        ("syntax", "version = 1\nhostname = \n", ":2:"),
        ("unknown", "version = 1\nhostnme = \"x\"\n", ":2:1"),
        ("wrongtype", "version = 1\nuid = \"root\"\n", ":2:"),
        ("badenum", "version = 1\nnet = \"bridge\"\n", ":2:"),
        (
            "badkind",
            "version = 1\n[[mount]]\ntype = \"overlayfs\"\ndst = \"/x\"\n",
            ":3:",
        ),
        (
            "unknownmount",
            "version = 1\n[[mount]]\ntype = \"tmpfs\"\ndts = \"/x\"\n",
            ":4:1",
        ),
        ("version", "version = 2\n", ":1:11"),
        ("noversion", "hostname = \"x\"\n", "version"),
    ];
    for (name, text, want) in cases {
        let p = d.user(name, text);
        let e = err(&d, name);
        assert!(e.starts_with(&p.display().to_string()), "{name}: {e}");
        assert!(e.contains(want), "{name}: wanted {want:?} in {e}");
    }
}

#[test]
fn unknown_keys_get_the_nearest_valid_key_suggested() {
    let d = Dirs::new("suggest");
    d.user("a", "version = 1\nhostnme = \"x\"\n");
    assert!(
        err(&d, "a").contains("did you mean `hostname`?"),
        "{}",
        err(&d, "a")
    );
    d.user(
        "b",
        "version = 1\n[[mount]]\ntype = \"tmpfs\"\ndts = \"/x\"\n",
    );
    assert!(
        err(&d, "b").contains("did you mean `dst`?"),
        "{}",
        err(&d, "b")
    );
    d.user("c", "version = 1\n[env]\nkeeep = []\n");
    assert!(
        err(&d, "c").contains("did you mean `keep`?"),
        "{}",
        err(&d, "c")
    );
    d.user("e", "version = 1\nzzzzzzzz = 1\n");
    assert!(
        !err(&d, "e").contains("did you mean"),
        "no far-fetched guesses"
    );
}

#[test]
fn lookup_order_user_then_system_then_builtin() {
    let d = Dirs::new("lookup");
    assert_eq!(
        find("minimal", &d.locs, None).unwrap().origin,
        Origin::Builtin
    );
    d.system("minimal", "version = 1\ndescription = \"system one\"\n");
    assert_eq!(
        find("minimal", &d.locs, None).unwrap().origin,
        Origin::System
    );
    d.user("minimal", "version = 1\ndescription = \"user one\"\n");
    assert_eq!(find("minimal", &d.locs, None).unwrap().origin, Origin::User);
    assert_eq!(
        find("builtin:minimal", &d.locs, None).unwrap().origin,
        Origin::Builtin
    );
    let p = d.user("bypath", "version = 1\n");
    assert_eq!(
        find(p.to_str().unwrap(), &d.locs, None).unwrap().origin,
        Origin::Path
    );
    assert!(find("nope", &d.locs, None)
        .unwrap_err()
        .contains("no profile \"nope\""));
    assert!(
        find("../evil", &d.locs, None).is_err(),
        "a path that does not exist"
    );
    assert!(find("a b", &d.locs, None)
        .unwrap_err()
        .contains("not a profile name"));
}

#[test]
fn a_user_profile_extends_the_builtin_of_the_same_name() {
    let d = Dirs::new("extend");
    d.user(
        "minimal",
        "version = 1\ndescription = \"mine\"\ninclude = [\"builtin:minimal\"]\nhostname = \"mine\"\n\
         [[mount]]\ntype = \"dir\"\ndst = \"/extra\"\n",
    );
    let r = resolve("minimal", &d.locs, None).unwrap();
    assert_eq!(
        r.hostname.as_deref(),
        Some("mine"),
        "the extension overrides scalars"
    );
    assert_eq!(r.description.as_deref(), Some("mine"));
    assert_eq!(
        r.mounts.last().unwrap().0.dst.as_deref(),
        Some("/extra"),
        "and adds mounts last"
    );
    assert!(
        r.mounts.iter().any(|(m, _)| m.kind == MountKind::Proc),
        "the built-in's mounts are kept"
    );
    assert_eq!(r.files.first().unwrap(), "builtin:system");
}

#[test]
fn merge_order_and_scalar_precedence() {
    let d = Dirs::new("merge");
    d.user("a", "version = 1\nhostname = \"a\"\nnet = \"host\"\nmask = [\"/ma\"]\n[[mount]]\ntype = \"dir\"\ndst = \"/a\"\n[env]\nset = { X = \"a\", Y = \"a\" }\nkeep = [\"K1\"]\n[rlimits]\nnofile = 10\ncpu = 5\n");
    d.user("b", "version = 1\nhostname = \"b\"\nmask = [\"/mb\"]\n[[mount]]\ntype = \"dir\"\ndst = \"/b\"\n[env]\nunset = [\"Y\"]\nkeep = [\"K2\", \"K1\"]\n[limits]\nnofile = 20\n");
    d.user(
        "top",
        "version = 1\ninclude = [\"a\", \"b\", \"a\"]\n[[mount]]\ntype = \"dir\"\ndst = \"/top\"\n[env]\nset = { Y = \"top\" }\n",
    );
    let r = resolve("top", &d.locs, None).unwrap();
    let dsts: Vec<_> = r
        .mounts
        .iter()
        .map(|(m, _)| m.dst.clone().unwrap())
        .collect();
    assert_eq!(
        dsts,
        ["/a", "/b", "/top"],
        "includes first, in order, each once"
    );
    assert_eq!(
        r.masks.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(),
        ["/ma", "/mb"]
    );
    assert_eq!(r.hostname.as_deref(), Some("b"), "a later include wins");
    assert_eq!(
        r.net,
        Some(schema::NetMode::Host),
        "kept when nothing later sets it"
    );
    assert_eq!(r.env_keep, ["K1", "K2"]);
    assert_eq!(
        r.env_ops,
        [
            EnvOp::Set("X".into(), "a".into()),
            EnvOp::Set("Y".into(), "a".into()),
            EnvOp::Unset("Y".into()),
            EnvOp::Set("Y".into(), "top".into())
        ]
    );
    assert_eq!(r.limits.nofile, Some(20));
    assert_eq!(r.limits.cpu, Some(5));
    assert!(
        r.mounts[2].1.to_string().contains("top.toml:3:1"),
        "{}",
        r.mounts[2].1
    );
}

#[test]
fn include_cycles_and_depth_print_the_chain() {
    let d = Dirs::new("cycle");
    d.user("x", "version = 1\ninclude = [\"y\"]\n");
    d.user("y", "version = 1\ninclude = [\"x\"]\n");
    let e = err(&d, "x");
    assert!(
        e.contains("include cycle") && e.contains("x.toml -> ") && e.contains("y.toml -> "),
        "{e}"
    );
    for i in 0..20 {
        d.user(
            &format!("d{i}"),
            &format!("version = 1\ninclude = [\"d{}\"]\n", i + 1),
        );
    }
    d.user("d20", "version = 1\n");
    let e = err(&d, "d0");
    assert!(
        e.contains("deeper than 16") && e.contains("d0.toml -> ") && e.contains("d16.toml"),
        "{e}"
    );
    d.user("ok", "version = 1\ninclude = [\"d10\"]\n");
    assert!(resolve("ok", &d.locs, None).is_ok(), "11 levels are fine");
}

#[test]
fn missing_include_names_the_line() {
    let d = Dirs::new("missing");
    d.user(
        "m",
        "version = 1\ndescription = \"x\"\ninclude = [\"minimal\", \"nonesuch\"]\n",
    );
    let e = err(&d, "m");
    assert!(e.contains("m.toml:3:") && e.contains("nonesuch"), "{e}");
}

#[test]
fn includes_by_path_are_relative_to_the_including_file() {
    let d = Dirs::new("relpath");
    std::fs::create_dir_all(d.root.join("lib")).unwrap();
    std::fs::write(
        d.root.join("lib/part.toml"),
        "version = 1\nhostname = \"part\"\n",
    )
    .unwrap();
    std::fs::write(
        d.root.join("main.toml"),
        "version = 1\ninclude = [\"lib/part.toml\"]\n",
    )
    .unwrap();
    let r = resolve(d.root.join("main.toml").to_str().unwrap(), &d.locs, None).unwrap();
    assert_eq!(r.hostname.as_deref(), Some("part"));
    assert!(
        r.dirs.contains(&d.root.join("lib")),
        "its directory is protected too"
    );
}

#[test]
fn distance_and_location_helpers() {
    assert_eq!(distance("hostnme", "hostname"), 1);
    assert_eq!(distance("", "abc"), 3);
    let l = loc_at("f", "ab\ncd\nef", 4);
    assert_eq!((l.line, l.col), (2, 2));
    let l = loc_at("f", "abc", 0);
    assert_eq!((l.line, l.col), (1, 1));
}

#[test]
fn only_small_regular_files_are_read_and_descriptions_are_not_inherited() {
    let d = Dirs::new("hostile");
    d.user("zero", "version = 1\ninclude = [\"/dev/zero\"]\n");
    assert!(
        err(&d, "zero").contains("not a regular file"),
        "{}",
        err(&d, "zero")
    );
    d.user(
        "big",
        &format!("version = 1\ndescription = \"{}\"\n", "x".repeat(2 << 20)),
    );
    assert!(
        err(&d, "big").contains("larger than 1 MiB"),
        "{}",
        err(&d, "big")
    );
    d.user("plain", "version = 1\ninclude = [\"builtin:dev\"]\n");
    assert_eq!(resolve("plain", &d.locs, None).unwrap().description, None);
    // Read once however the include is spelled.
    std::fs::write(
        d.root.join("a.toml"),
        "version = 1\n[[mount]]\ntype = \"dir\"\ndst = \"/a\"\n",
    )
    .unwrap();
    std::fs::write(
        d.root.join("top.toml"),
        "version = 1\ninclude = [\"a.toml\", \"./a.toml\", \"../\", \"a.toml\"]\n"
            .replace("\"../\", ", ""),
    )
    .unwrap();
    let r = resolve(d.root.join("top.toml").to_str().unwrap(), &d.locs, None).unwrap();
    assert_eq!(r.mounts.len(), 1);
}

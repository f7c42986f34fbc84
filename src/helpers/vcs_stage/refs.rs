//! The refs a staged run moved: what the host had at the launch (its loose refs
//! and packed-refs, as copied in), what git reads in the staging directory after
//! the run, and the moves between them, each made by `git update-ref` with its
//! old value (a ref the host's git moved meanwhile is kept as the host has it).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::hostgit::Git;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The refs at the launch (name → object id) and the names that were symbolic
/// (never moved from here: `update-ref` would move what they point at).
pub struct Snapshot {
    pub refs: BTreeMap<String, String>,
    pub symbolic: BTreeSet<String>,
}

/// Parse what the host's git wrote: packed-refs first, loose refs over them.
pub fn snapshot(loose: &BTreeMap<PathBuf, Vec<u8>>, packed: Option<&[u8]>) -> Snapshot {
    let mut refs = BTreeMap::new();
    let mut symbolic = BTreeSet::new();
    for line in String::from_utf8_lossy(packed.unwrap_or_default()).lines() {
        if let Some((oid, name)) = line.split_once(' ') {
            if oid.len() == 40 && !line.starts_with('#') && !line.starts_with('^') {
                refs.insert(name.to_string(), oid.to_string());
            }
        }
    }
    for (rel, data) in loose {
        let name = Path::new("refs").join(rel).to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(data);
        let text = text.trim_end();
        if text.starts_with("ref: ") {
            symbolic.insert(name);
        } else if text.len() == 40 {
            refs.insert(name, text.to_string());
        }
    }
    Snapshot { refs, symbolic }
}

/// One ref the run moved: its name, the value at the launch and after (None:
/// absent).
#[derive(Debug, PartialEq, Eq)]
pub struct Move {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The moves from `before` to `after` (git's reading of the staging directory),
/// HEAD and symbolic refs aside.
pub fn moves(before: &Snapshot, after: &[(String, String)]) -> Vec<Move> {
    let after: BTreeMap<&str, &str> = after
        .iter()
        .filter(|(name, _)| name.starts_with("refs/"))
        .map(|(n, o)| (n.as_str(), o.as_str()))
        .collect();
    let names: BTreeSet<&str> = before
        .refs
        .keys()
        .map(String::as_str)
        .chain(after.keys().copied())
        .collect();
    names
        .into_iter()
        .filter(|n| !before.symbolic.contains(*n))
        .filter_map(|n| {
            let (old, new) = (
                before.refs.get(n).map(String::as_str),
                after.get(n).copied(),
            );
            (old != new).then(|| Move {
                name: n.to_string(),
                old: old.map(str::to_string),
                new: new.map(str::to_string),
            })
        })
        .collect()
}

fn short(oid: &Option<String>) -> &str {
    oid.as_deref().map_or("(none)", |o| &o[..o.len().min(7)])
}

/// What became of the moves: made (described), refused (why).
#[derive(Default)]
pub struct Outcome {
    pub made: Vec<String>,
    pub refused: Vec<String>,
}

/// Make each move with `git update-ref`, its old value checked (`message` of the
/// ref's name for the reflog). A replace ref is never made: it changes what `git log` and `git diff`
/// show for objects it does not touch.
pub fn apply(git: &Git, moves: &[Move], message: impl Fn(&str) -> String) -> Outcome {
    let mut out = Outcome::default();
    for m in moves {
        let old = m.old.as_deref().unwrap_or(ZERO);
        let message = message(&m.name);
        let args: Vec<&str> = match &m.new {
            Some(new) => vec!["update-ref", "-m", &message, "--", &m.name, new, old],
            None => vec!["update-ref", "-m", &message, "-d", "--", &m.name, old],
        };
        let args: Vec<&OsStr> = args.into_iter().map(OsStr::new).collect();
        match git.run(&args, b"") {
            Ok(_) => out.made.push(match (&m.old, &m.new) {
                (Some(_), Some(_)) => format!("{} {}..{}", m.name, short(&m.old), short(&m.new)),
                (None, _) => format!("{} new at {}", m.name, short(&m.new)),
                (_, None) => format!("{} deleted", m.name),
            }),
            Err(why) => out.refused.push(format!("{}: {why}", m.name)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_what_changed_symbolic_refs_aside() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let mut loose = BTreeMap::new();
        loose.insert(PathBuf::from("heads/main"), format!("{a}\n").into_bytes());
        loose.insert(
            PathBuf::from("remotes/origin/HEAD"),
            b"ref: refs/remotes/origin/main\n".to_vec(),
        );
        let packed =
            format!("# pack-refs with: peeled\n{a} refs/tags/v1\n^{b}\n{a} refs/heads/old\n");
        let before = snapshot(&loose, Some(packed.as_bytes()));
        assert_eq!(before.refs.len(), 3);
        let after = vec![
            ("HEAD".to_string(), b.clone()),
            ("refs/heads/main".to_string(), b.clone()),
            ("refs/tags/v1".to_string(), a.clone()),
            ("refs/heads/new".to_string(), a.clone()),
            ("refs/remotes/origin/HEAD".to_string(), b.clone()),
        ];
        let m = moves(&before, &after);
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["refs/heads/main", "refs/heads/new", "refs/heads/old"]
        );
        assert_eq!(m[2].new, None);
        assert_eq!(m[1].old, None);
    }
}

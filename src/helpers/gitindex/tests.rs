use super::*;

/// An on-disk entry: stat data filled with `stat_byte`, mode, a one-byte-repeated
/// object id, flags (name length added) and, for version 4, the prefix to strip.
fn raw(
    mode: u32,
    path: &str,
    stat_byte: u8,
    oid: u8,
    flags: u16,
    v4_strip: Option<usize>,
) -> Vec<u8> {
    let mut e = vec![stat_byte; 24];
    e.extend_from_slice(&mode.to_be_bytes());
    e.extend_from_slice(&[stat_byte; 12]);
    e.extend_from_slice(&[oid; 20]);
    e.extend_from_slice(&(flags | path.len() as u16).to_be_bytes());
    match v4_strip {
        Some(n) => {
            e.push(n as u8);
            e.extend_from_slice(path.as_bytes());
            e.push(0);
        }
        None => {
            e.extend_from_slice(path.as_bytes());
            let len = e.len();
            e.resize(len + (8 - len % 8), 0);
        }
    }
    e
}

fn index(version: u32, entries: &[Vec<u8>], extensions: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut idx = b"DIRC".to_vec();
    idx.extend_from_slice(&version.to_be_bytes());
    idx.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        idx.extend_from_slice(e);
    }
    for (sig, data) in extensions {
        idx.extend_from_slice(*sig);
        idx.extend_from_slice(&(data.len() as u32).to_be_bytes());
        idx.extend_from_slice(data);
    }
    let sum = crate::vcs_stage::sha1::digest(&idx);
    idx.extend_from_slice(&sum);
    idx
}

#[test]
fn gitlinks_are_read_from_every_index_version() {
    for version in [2u32, 3] {
        let idx = index(
            version,
            &[
                raw(0o100644, "README", 1, 1, 0, None),
                raw(0o160000, "libs/sub", 1, 2, 0, None),
                raw(0o160000, "vendor", 1, 3, 0, None),
            ],
            &[],
        );
        assert_eq!(
            gitlinks(&idx, 20).unwrap(),
            [b"libs/sub".to_vec(), b"vendor".to_vec()]
        );
    }
    // Version 4: each path strips bytes of the one before.
    let idx = index(
        4,
        &[
            raw(0o100644, "libs/a.c", 1, 1, 0, Some(0)),
            raw(0o160000, "sub", 1, 2, 0, Some(3)),
        ],
        &[],
    );
    assert_eq!(gitlinks(&idx, 20).unwrap(), [b"libs/sub".to_vec()]);
    assert!(
        gitlinks(b"DIRC\0\0\0\x02\0\0\0\x05", 20).is_none(),
        "truncated"
    );
    assert!(gitlinks(b"nope", 20).is_none());
}

#[test]
fn an_unchanged_entry_is_kept_and_a_changed_one_loses_what_git_trusts() {
    let old = index(
        2,
        &[
            raw(0o100644, "Makefile", 7, 1, 0, None),
            raw(0o100644, "README", 7, 2, 0, None),
        ],
        &[],
    );
    // The sandbox edited Makefile and recorded the new file's stat data with the
    // old blob (hiding the edit from `git status`), marked README assume-valid and
    // added an entry with skip-worktree, plus a cache-tree extension.
    let new = index(
        3,
        &[
            raw(0o100644, "Makefile", 9, 1, 0, None),
            raw(0o100644, "README", 7, 2, ASSUME_VALID, None),
            {
                let mut e = raw(0o100755, "run.sh", 9, 3, EXTENDED, None);
                // The extended flags follow the flags: insert them.
                let at = 40 + 20 + 2;
                e.splice(at..at, SKIP_WORKTREE.to_be_bytes());
                let len = 62 + 2 + "run.sh".len();
                e.truncate(len);
                e.resize(len + (8 - len % 8), 0);
                e
            },
        ],
        &[(b"TREE", b"whatever"), (b"UNTR", b"x")],
    );
    let out = sanitize(Some(&old), &new).unwrap();
    let idx = parse(&out, 20).unwrap();
    assert_eq!(idx.version, 2, "no extended flag is left");
    assert!(idx.extensions.is_empty());
    let e: Vec<&Entry> = idx.entries.iter().collect();
    assert_eq!(e.len(), 3);
    // Makefile: stat data zeroed, mode and object kept.
    assert_eq!(e[0].path, b"Makefile");
    assert_eq!(e[0].mode(), 0o100644);
    assert!(e[0].stat[..24].iter().all(|b| *b == 0) && e[0].stat[28..].iter().all(|b| *b == 0));
    assert_eq!(e[0].oid, vec![1; 20]);
    // README: the flag it gained is gone.
    assert_eq!(e[1].flags & ASSUME_VALID, 0);
    // run.sh: new, so no stat data and no skip-worktree.
    assert_eq!(e[2].ext, 0);
    assert_eq!(e[2].mode(), 0o100755);
    // The trailer is the SHA-1 of the rest (git checks it).
    let (body, sum) = out.split_at(out.len() - 20);
    assert_eq!(sum, crate::vcs_stage::sha1::digest(body));
}

#[test]
fn flags_the_user_set_before_the_run_are_kept() {
    let old = index(
        2,
        &[raw(0o100644, "big.bin", 7, 1, ASSUME_VALID, None)],
        &[],
    );
    // Same object, new stat data: still the user's assume-valid.
    let new = index(
        2,
        &[raw(0o100644, "big.bin", 8, 1, ASSUME_VALID, None)],
        &[],
    );
    let idx = parse(&sanitize(Some(&old), &new).unwrap(), 20).unwrap();
    assert_eq!(idx.entries[0].flags & ASSUME_VALID, ASSUME_VALID);
    assert_eq!(idx.entries[0].stat[..24], [0; 24]);
    // A new object under the flag: the flag goes.
    let new = index(
        2,
        &[raw(0o100644, "big.bin", 8, 2, ASSUME_VALID, None)],
        &[],
    );
    let idx = parse(&sanitize(Some(&old), &new).unwrap(), 20).unwrap();
    assert_eq!(idx.entries[0].flags & ASSUME_VALID, 0);
    // Identical entries, version 4 in, unchanged through.
    let v4 = index(
        4,
        &[raw(0o100644, "big.bin", 7, 1, ASSUME_VALID, Some(0))],
        &[],
    );
    let idx = parse(&sanitize(Some(&old), &v4).unwrap(), 20).unwrap();
    assert_eq!(idx.entries, parse(&old, 20).unwrap().entries);
}

#[test]
fn indexes_that_cannot_be_rewritten_are_refused_by_name() {
    let e = [raw(0o100644, "a", 1, 1, 0, None)];
    for (sig, why) in [
        (b"link", "split index"),
        (b"sdir", "sparse index"),
        (b"abcd", "required extension `abcd`"),
    ] {
        let err = sanitize(None, &index(2, &e, &[(sig, b"")])).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    assert!(sanitize(None, b"DIRC").is_err());
    // An extension running past the end.
    let mut bad = index(2, &e, &[(b"TREE", b"")]);
    let at = bad.len() - 20 - 4;
    bad[at..at + 4].copy_from_slice(&1000u32.to_be_bytes());
    assert!(sanitize(None, &bad).is_err());
}

#[test]
fn paths_git_would_refuse_are_refused_in_every_spelling() {
    for bad in [
        ".git/hooks/pre-commit",
        ".GIT/config",
        ".git./hooks/x",
        ".git ./x",
        "git~1/config",
        "sub/.Git/hooks/x",
        "../escape",
        "a/../../b",
        "a//b",
        "./a",
        "/etc/passwd",
        "",
        ".g\u{200c}it/x",
    ] {
        assert!(!path_is_safe(bad.as_bytes(), 0o100644), "{bad:?}");
    }
    assert!(
        !path_is_safe(b".gitmodules", 0o120000),
        "a symlinked .gitmodules"
    );
    for good in [
        ".gitignore",
        ".gitmodules",
        "src/.github/ci.yml",
        "a.git/x",
        "git~2",
        "..a",
    ] {
        assert!(path_is_safe(good.as_bytes(), 0o100644), "{good:?}");
    }
}

#[test]
fn an_index_with_a_bad_path_or_a_new_submodule_is_refused() {
    let old = index(2, &[raw(0o160000, "vendor", 1, 1, 0, None)], &[]);
    let bad = index(
        2,
        &[raw(0o100755, ".git/hooks/post-checkout", 1, 2, 0, None)],
        &[],
    );
    assert!(sanitize(Some(&old), &bad)
        .unwrap_err()
        .contains("must not check out"));
    let new_link = index(
        2,
        &[
            raw(0o160000, "deep/sub", 1, 3, 0, None),
            raw(0o160000, "vendor", 1, 1, 0, None),
        ],
        &[],
    );
    assert!(sanitize(Some(&old), &new_link)
        .unwrap_err()
        .contains("a new submodule at \"deep/sub\""));
    // An existing submodule moved to another commit is ordinary.
    let moved = index(2, &[raw(0o160000, "vendor", 1, 9, 0, None)], &[]);
    assert!(sanitize(Some(&old), &moved).is_ok());
}

/// An index git would read wrongly, or whose next commit would write a tree fsck
/// refuses, is refused: entries out of order, repeated, a file that is also a
/// directory, modes git never writes (040000 is a sparse directory entry), the
/// null object id.
#[test]
fn only_an_index_git_itself_would_write_is_kept() {
    let e = |mode, path: &str, oid| raw(mode, path, 1, oid, 0, None);
    let ok = index(2, &[e(0o100644, "a.txt", 1), e(0o100755, "b/c", 2)], &[]);
    assert!(sanitize(None, &ok).is_ok());
    for (entries, why) in [
        (vec![e(0o100644, "z", 1), e(0o100644, "a", 1)], "order"),
        (vec![e(0o100644, "a", 1), e(0o100644, "a", 2)], "order"),
        (
            vec![e(0o120000, "x", 1), e(0o100644, "x/y", 1)],
            "file and a directory",
        ),
        (
            vec![
                e(0o120000, "x", 1),
                e(0o100644, "x-1", 1),
                e(0o100644, "x/y", 1),
            ],
            "file and a directory",
        ),
        (vec![e(0o040000, "d", 1)], "mode 40000"),
        (vec![e(0o100664, "d", 1)], "mode 100664"),
        (vec![e(0o100644, "n", 0)], "naming no object"),
    ] {
        let err = sanitize(None, &index(2, &entries, &[])).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    // Conflict stages of one path are in order: kept.
    let stages = index(
        2,
        &[
            raw(0o100644, "m", 1, 1, 0x1000, None),
            raw(0o100644, "m", 1, 2, 0x2000, None),
            raw(0o100644, "m", 1, 3, 0x3000, None),
        ],
        &[],
    );
    assert!(sanitize(None, &stages).is_ok());
}

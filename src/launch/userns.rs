//! The user namespace's id maps: which ids the sandbox sees, and how they get written.
//!
//! Two ways, decided in the plan (sbx(1), --ids):
//! - **subordinate**: the user has ranges in /etc/subuid and /etc/subgid and the setuid
//!   helpers exist. `newuidmap`/`newgidmap` (shadow's `uidmap`) write the user's own id and
//!   the subordinate ranges, the latter mapped to themselves so files left by rootless
//!   containers keep their owners inside. Both helpers run at once (README,
//!   Benchmark: ~1.2 ms of CPU each), by absolute path, argv only, stderr captured.
//! - **single**: one id each way, written by sbx itself. `setgroups` is set to `deny` first:
//!   the kernel requires it before an unprivileged gid_map write (user_namespaces(7);
//!   CVE-2014-8989, dropping groups to escape negative-group ACLs).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SubidRange {
    pub start: u32,
    pub count: u32,
}

/// Ranges of `user` (by name or by uid, as shadow accepts both) in a subuid/subgid file.
pub fn parse_subid(text: &str, user: &str, uid: u32) -> Vec<SubidRange> {
    let uid = uid.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (owner != user && owner != uid) {
                return None;
            }
            let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
            (count > 0 && start.checked_add(count).is_some()).then_some(SubidRange { start, count })
        })
        .collect()
}

/// Lines of a subuid/subgid file (`file`) where a range of `user` overlaps another
/// owner's: each overlap names both lines. Two users whose ranges overlap would own
/// each other's files through their sandboxes (shadow's own tools never allocate
/// such ranges; a hand edit can).
pub fn subid_overlaps(file: &str, text: &str, user: &str, uid: u32) -> Vec<String> {
    let uid_s = uid.to_string();
    let lines: Vec<(usize, &str, &str, u64, u64)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = t.split(':').collect();
            let [owner, start, count] = f[..] else {
                return None;
            };
            let (start, count) = (start.parse::<u64>().ok()?, count.parse::<u64>().ok()?);
            (count > 0).then_some((i + 1, l, owner, start, start.saturating_add(count)))
        })
        .collect();
    let mine = |o: &str| o == user || o == uid_s;
    let mut out = Vec::new();
    for a in lines.iter().filter(|a| mine(a.2)) {
        for b in lines.iter().filter(|b| !mine(b.2)) {
            if a.3 < b.4 && b.3 < a.4 {
                out.push(format!(
                    "{file} line {} `{}` overlaps line {} `{}` of another user",
                    a.0,
                    a.1.trim(),
                    b.0,
                    b.1.trim()
                ));
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mapping {
    Single,
    Subordinate {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdPlan {
    /// The ids the command runs as, inside.
    pub uid: u32,
    pub gid: u32,
    pub mapping: Mapping,
    pub uid_map: Vec<MapLine>,
    pub gid_map: Vec<MapLine>,
    /// `ids = "subordinate"`: a helper that fails stops the launch instead of the
    /// single-id fallback.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// The kernel accepts at most 340 lines per map (user_namespaces(7)).
const MAX_MAP_LINES: usize = 340;

/// Why the single-id map stands in for subordinate ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// No range for the user in /etc/subuid and /etc/subgid.
    NoRanges,
    /// Ranges, but newuidmap or newgidmap is missing.
    NoHelpers,
    /// Ranges and helpers, unusable here (said why).
    Unusable(String),
}

impl Fallback {
    /// The cause alone (for a refusal, where no fallback happens).
    pub fn cause(&self, host_uid: u32) -> String {
        match self {
            Fallback::NoRanges => {
                format!("no subordinate ids for uid {host_uid} in /etc/subuid and /etc/subgid")
            }
            Fallback::NoHelpers => format!(
                "subordinate ids are configured but {} or {} is missing (install the `uidmap` \
                 package)",
                crate::host::NEWUIDMAP,
                crate::host::NEWGIDMAP
            ),
            Fallback::Unusable(why) => format!("subordinate ids cannot be used: {why}"),
        }
    }

    /// The one-line notice of the fallback.
    pub fn notice(&self, host_uid: u32, host_gid: u32) -> String {
        let groups = match self {
            Fallback::NoHelpers => "",
            _ => " (setgroups denied)",
        };
        format!(
            "{}: mapping only uid {host_uid} and gid {host_gid}{groups}",
            self.cause(host_uid)
        )
    }
}

/// Build the maps. `helpers` is `Some((newuidmap, newgidmap))` when both exist.
/// Returns the plan and, when only a single id can be mapped, why.
pub fn plan_ids(
    host_uid: u32,
    host_gid: u32,
    inside_uid: u32,
    inside_gid: u32,
    subuid: &[SubidRange],
    subgid: &[SubidRange],
    helpers: Option<(PathBuf, PathBuf)>,
) -> Result<(IdPlan, Option<Fallback>)> {
    let own = |inside, outside| MapLine {
        inside,
        outside,
        count: 1,
    };
    let single = |why: Fallback| {
        (
            IdPlan {
                uid: inside_uid,
                gid: inside_gid,
                mapping: Mapping::Single,
                uid_map: vec![own(inside_uid, host_uid)],
                gid_map: vec![own(inside_gid, host_gid)],
                required: false,
            },
            Some(why),
        )
    };
    if subuid.is_empty() || subgid.is_empty() {
        return Ok(single(Fallback::NoRanges));
    }
    let Some((newuidmap, newgidmap)) = helpers else {
        return Ok(single(Fallback::NoHelpers));
    };
    let ranges =
        |inside: u32, outside: u32, subs: &[SubidRange], what: &str| -> Result<Vec<MapLine>> {
            let mut lines = vec![own(inside, outside)];
            for r in subs {
                if (r.start..r.start + r.count).contains(&inside) {
                    return Err(Error::new(
                        format!("--{what}"),
                        format!(
                        "{what} {inside} inside lies in the subordinate range {}:{} that is mapped \
                         to itself; choose an id outside it",
                        r.start, r.count
                    ),
                    ));
                }
                lines.push(MapLine {
                    inside: r.start,
                    outside: r.start,
                    count: r.count,
                });
            }
            lines.truncate(MAX_MAP_LINES);
            Ok(lines)
        };
    Ok((
        IdPlan {
            uid: inside_uid,
            gid: inside_gid,
            uid_map: ranges(inside_uid, host_uid, subuid, "uid")?,
            gid_map: ranges(inside_gid, host_gid, subgid, "gid")?,
            mapping: Mapping::Subordinate {
                newuidmap,
                newgidmap,
            },
            required: false,
        },
        None,
    ))
}

/// Whether the ranges of `subs` are all mapped in this process's own user namespace
/// (`map`: the text of /proc/self/uid_map or gid_map). Inside another user namespace
/// (a container, sbx itself) newuidmap can only map ids its namespace has.
pub fn map_covers(map: &str, subs: &[SubidRange]) -> bool {
    let lines: Vec<(u64, u64)> = map
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[0] + f[2]))
        })
        .collect();
    subs.iter().all(|r| {
        let (a, b) = (r.start as u64, r.start as u64 + r.count as u64);
        lines.iter().any(|(s, e)| *s <= a && b <= *e)
    })
}

/// After newuidmap or newgidmap failed: write, from the launcher (the namespace's
/// owner, in its parent namespace), the single-id map of each map not yet written
/// (user_namespaces(7): one line mapping the writer's own id; setgroups denied first).
/// Returns what was mapped that way ("uid 1000 and gid 1000", or only one of them
/// when the other helper had written its map).
pub fn write_single_maps_for(pid: libc::pid_t, uid: u32, gid: u32, ids: &IdPlan) -> Result<String> {
    let step = "user namespace id map (single-id fallback)";
    let path = |f: &str| format!("/proc/{pid}/{f}");
    let empty = |f: &str| {
        std::fs::read_to_string(path(f))
            .map(|t| t.trim().is_empty())
            .unwrap_or(false)
    };
    let write = |f: &str, text: String| -> Result<()> {
        OpenOptions::new()
            .write(true)
            .open(path(f))
            .and_then(|mut h| h.write_all(text.as_bytes()))
            .map_err(|e| {
                Error::new(
                    step,
                    format!("write({:?}, {:?}): {e}", path(f), text.trim_end()),
                )
            })
    };
    let mut done = Vec::new();
    if empty("uid_map") {
        write("uid_map", format!("{} {uid} 1\n", ids.uid))?;
        done.push(format!("uid {uid}"));
    }
    if empty("gid_map") {
        write("setgroups", "deny".into())?;
        write("gid_map", format!("{} {gid} 1\n", ids.gid))?;
        done.push(format!("gid {gid} (setgroups denied)"));
    }
    Ok(match done.len() {
        2 => format!("mapping only {}", done.join(" and ")),
        _ => format!(
            "mapping only {}; the other map holds the subordinate ranges",
            done.join("")
        ),
    })
}

fn map_text(lines: &[MapLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
        .collect()
}

fn helper_args(lines: &[MapLine]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| {
            [
                l.inside.to_string(),
                l.outside.to_string(),
                l.count.to_string(),
            ]
        })
        .collect()
}

/// Write a single-id map for the calling process, from inside its new user
/// namespace: allowed unprivileged for one line mapping the creator's own id, with
/// `setgroups` denied first (user_namespaces(7)). PID 1 does it itself, the
/// moment it exists, so no other process has to be woken for it.
pub fn write_own_single_map(ids: &IdPlan) -> Result<()> {
    let write = |file: &str, text: &str| -> Result<()> {
        let path = format!("/proc/self/{file}");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| {
                Error::new(
                    "user namespace id map",
                    format!("write({path:?}, {:?}): {e}", text.trim_end()),
                )
            })
    };
    write("setgroups", "deny")?;
    write("uid_map", &map_text(&ids.uid_map))?;
    write("gid_map", &map_text(&ids.gid_map))
}

/// The subordinate maps of process `pid` (PID 1, just cloned into its new user
/// namespace), being written by the setuid helpers; `None` for a single-id map, which
/// PID 1 writes itself ([`write_own_single_map`]).
pub fn start_maps(ids: &IdPlan, pid: libc::pid_t) -> Option<PendingMaps> {
    match &ids.mapping {
        Mapping::Single => None,
        Mapping::Subordinate {
            newuidmap,
            newgidmap,
        } => Some(PendingMaps(
            // Started together, reaped together: the two helpers overlap each other
            // and PID 1's unshare of the remaining namespaces (README, Benchmark:
            // about 1.2 ms each, the longest step of the launch).
            spawn_helper(newuidmap, pid, &ids.uid_map),
            spawn_helper(newgidmap, pid, &ids.gid_map),
        )),
    }
}

/// Both helpers of [`start_maps`], running.
pub struct PendingMaps(Helper, Helper);

impl PendingMaps {
    /// Wait for both helpers; the error quotes the failing one's argv and stderr.
    pub fn finish(self) -> Result<()> {
        let uid = finish_helper(self.0);
        let gid = finish_helper(self.1);
        uid.and(gid)
    }
}

struct Helper {
    argv: String,
    child: std::io::Result<Child>,
}

fn spawn_helper(path: &PathBuf, pid: libc::pid_t, lines: &[MapLine]) -> Helper {
    let args = helper_args(lines);
    let argv = format!("{} {pid} {}", path.display(), args.join(" "));
    let child = Command::new(path)
        .arg(pid.to_string())
        .args(&args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    Helper { argv, child }
}

fn finish_helper(h: Helper) -> Result<()> {
    let step = "user namespace id map";
    let out = h
        .child
        .and_then(|c| c.wait_with_output())
        .map_err(|e| Error::new(step, format!("{}: {e}", h.argv)))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(Error::new(
        step,
        format!(
            "{} failed ({}): {}",
            h.argv,
            out.status,
            if stderr.trim().is_empty() {
                "no message"
            } else {
                stderr.trim()
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str =
        "# comment\nalice:100000:65536\n1001:300000:10\nbob:200000:65536\nbroken:1\nalice:x:1\n";

    #[test]
    fn subid_by_name_and_by_uid() {
        let r = parse_subid(SUBUID, "alice", 1001);
        assert_eq!(
            r,
            [
                SubidRange {
                    start: 100000,
                    count: 65536
                },
                SubidRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert!(parse_subid(SUBUID, "carol", 1002).is_empty());
        assert!(
            parse_subid("x:4294967295:2\n", "x", 1).is_empty(),
            "overflowing range"
        );
    }

    fn sub() -> Vec<SubidRange> {
        vec![SubidRange {
            start: 100000,
            count: 65536,
        }]
    }

    fn helpers() -> Option<(PathBuf, PathBuf)> {
        Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()))
    }

    #[test]
    fn subordinate_map_has_own_id_and_identity_range() {
        let (p, notice) = plan_ids(1000, 1000, 1000, 1000, &sub(), &sub(), helpers()).unwrap();
        assert!(notice.is_none());
        assert_eq!(map_text(&p.uid_map), "1000 1000 1\n100000 100000 65536\n");
        assert_eq!(
            helper_args(&p.gid_map),
            ["1000", "1000", "1", "100000", "100000", "65536"]
        );
    }

    #[test]
    fn root_inside_maps_zero_to_the_user() {
        let (p, _) = plan_ids(1000, 1000, 0, 0, &sub(), &sub(), helpers()).unwrap();
        assert_eq!(map_text(&p.uid_map), "0 1000 1\n100000 100000 65536\n");
        let (p, _) = plan_ids(1000, 1000, 0, 0, &[], &[], helpers()).unwrap();
        assert_eq!(map_text(&p.uid_map), "0 1000 1\n");
    }

    #[test]
    fn single_map_without_subids_or_helpers_is_announced() {
        let (p, notice) = plan_ids(1000, 1000, 1000, 1000, &[], &sub(), helpers()).unwrap();
        assert_eq!(p.mapping, Mapping::Single);
        assert!(notice
            .unwrap()
            .notice(1000, 1000)
            .contains("no subordinate ids"));
        let (p, notice) = plan_ids(1000, 1000, 1000, 1000, &sub(), &sub(), None).unwrap();
        assert_eq!(p.mapping, Mapping::Single);
        assert!(notice.unwrap().notice(1000, 1000).contains("uidmap"));
    }

    #[test]
    fn inside_id_inside_the_subordinate_range_is_refused() {
        let e = plan_ids(1000, 1000, 100005, 1000, &sub(), &sub(), helpers()).unwrap_err();
        assert!(e.detail.contains("subordinate range"), "{e}");
    }

    #[test]
    fn overlapping_ranges_of_other_users_are_named() {
        let text = "alice:100000:65536\nbob:165536:65536\n# c\neve:150000:10\n1001:300000:10\n";
        let o = subid_overlaps("/etc/subuid", text, "alice", 1000);
        assert_eq!(o.len(), 1, "{o:?}");
        assert!(
            o[0].contains("line 1 `alice:100000:65536`") && o[0].contains("line 4 `eve:150000:10`"),
            "{}",
            o[0]
        );
        // Adjacent ranges do not overlap; the user's own lines (by name or uid) never do.
        assert!(subid_overlaps("f", text, "bob", 1002).is_empty());
        assert!(subid_overlaps("f", "x:1:5\n1001:3:5\n", "x", 1001).is_empty());
        assert_eq!(subid_overlaps("f", text, "nobody", 7), Vec::<String>::new());
    }
}

//! The plan's id maps: subordinate ranges through the system's setuid helpers when
//! they are configured and usable, else the single-id map (announced once), or a
//! refusal when the profile or `--ids subordinate` requires them. The maps
//! themselves are crate::userns's.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, IdsArg};
use crate::error::{Error, Result};
use crate::host::{self, Host, HostFs};
use crate::profile::schema::IdMode;
use crate::profile::Resolved;
use crate::userns::{plan_ids, Fallback, IdPlan, Mapping};

pub fn plan(
    cli: &Cli,
    profile: &Resolved,
    host: &Host,
    fs: &dyn HostFs,
    notices: &mut Vec<String>,
) -> Result<IdPlan> {
    let helpers = (fs.is_executable_file(Path::new(host::NEWUIDMAP))
        && fs.is_executable_file(Path::new(host::NEWGIDMAP)))
    .then(|| {
        (
            PathBuf::from(host::NEWUIDMAP),
            PathBuf::from(host::NEWGIDMAP),
        )
    });
    let mode = match cli.ids {
        Some(IdsArg::Auto) => IdMode::Auto,
        Some(IdsArg::Subordinate) => IdMode::Subordinate,
        Some(IdsArg::Single) => IdMode::Single,
        None => profile.ids.unwrap_or(IdMode::Auto),
    };
    let (subuid, subgid) = match mode {
        IdMode::Single => (&[][..], &[][..]),
        _ => (&host.subuid[..], &host.subgid[..]),
    };
    let inside = (
        cli.uid.or(profile.uid).unwrap_or(host.uid),
        cli.gid.or(profile.gid).unwrap_or(host.gid),
    );
    let single = || plan_ids(host.uid, host.gid, inside.0, inside.1, &[], &[], None);
    let (ids, fallback) = plan_ids(
        host.uid, host.gid, inside.0, inside.1, subuid, subgid, helpers,
    )?;
    // Overlapping ranges are the administrator's to fix: a sandbox mapped with them
    // would own another user's files.
    if matches!(ids.mapping, Mapping::Subordinate { .. }) && !host.subid_overlaps.is_empty() {
        return Err(Error::new(
            "subordinate ids",
            format!(
                "refused: {}; two users' sandboxes would own each other's files. \
                 Ask the administrator to give each user a range of its own \
                 (usermod --del-subuids/--add-subuids)",
                host.subid_overlaps.join("; ")
            ),
        ));
    }
    // Subordinate ids that are configured may still be unusable: say why, and fall
    // back to the single-id map (or, when they are required, stop).
    let (mut ids, fallback) = match unusable(&ids.mapping, host, fs) {
        Some(why) => (single()?.0, Some(Fallback::Unusable(why))),
        None => (ids, fallback),
    };
    ids.required = mode == IdMode::Subordinate;
    settle(ids, mode, fallback, cli, profile, host, notices)
}

/// The maps as they stand: announced when the single-id map stands in for the
/// subordinate ranges, refused with the fix when the ranges are required.
fn settle(
    ids: IdPlan,
    mode: IdMode,
    fallback: Option<Fallback>,
    cli: &Cli,
    profile: &Resolved,
    host: &Host,
    notices: &mut Vec<String>,
) -> Result<IdPlan> {
    match (mode, fallback) {
        (IdMode::Subordinate, Some(why)) => {
            let fix = match why {
                Fallback::NoRanges => format!(
                    "add a range with `usermod --add-subuids 100000-165535 --add-subgids \
                     100000-165535 {}`",
                    host.user
                ),
                _ => "fix that, or use a profile with ids = \"auto\" (the single-id map)".into(),
            };
            Err(Error::new(
                match cli.ids {
                    Some(_) => "--ids subordinate".to_string(),
                    None => profile.where_set("ids"),
                },
                format!(
                    "the subordinate ids cannot be mapped: {}; {fix}",
                    why.cause(host.uid)
                ),
            ))
        }
        // Asked for: nothing to announce.
        (IdMode::Single, _) => Ok(ids),
        (_, why) => {
            notices.extend(why.map(|w| w.notice(host.uid, host.gid)));
            Ok(ids)
        }
    }
}

/// Why configured subordinate ids cannot be used here, if they cannot.
fn unusable(mapping: &Mapping, host: &Host, fs: &dyn HostFs) -> Option<String> {
    let Mapping::Subordinate { newuidmap, .. } = mapping else {
        return None;
    };
    if host.no_new_privs {
        Some(
            "no_new_privs is set on sbx (inside sbx, or a container that sets it): the setuid \
             newuidmap gains nothing"
                .into(),
        )
    } else if !fs.is_privileged_helper(newuidmap)
        || !fs.is_privileged_helper(Path::new(host::NEWGIDMAP))
    {
        Some(format!(
            "{} and {} must be setuid root or carry file capabilities (reinstall the `uidmap` \
             package)",
            host::NEWUIDMAP,
            host::NEWGIDMAP
        ))
    } else if !crate::userns::map_covers(&host.uid_map, &host.subuid)
        || !crate::userns::map_covers(&host.gid_map, &host.subgid)
    {
        Some(
            "the subordinate ranges are not mapped in the user namespace sbx runs in (a \
             container, or sbx inside sbx)"
                .into(),
        )
    } else {
        None
    }
}

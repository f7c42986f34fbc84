//! The mount kinds, each defined once: its fields (the plan's JSON form), where it
//! lands, its `-v`/`--dry-run` form, its Landlock rights and its profile form
//! (`--print-profile`). Adding a kind is one variant here, with its arm in each
//! method below, plus its executor arms (crate::mount: prepare and attach) and its
//! tree arm (plan/tree.rs): every match over the kinds is exhaustive, so the
//! compiler names each place (docs/ARCHITECTURE.md, "Adding a mount kind").

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::landlock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Recursively read-only, nosuid, nodev.
    ReadOnly,
    /// Writable, nosuid, nodev.
    ReadWrite,
    /// Writable, nosuid, device nodes usable.
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum MountOp {
    Bind {
        #[serde(serialize_with = "super::lossy")]
        src: PathBuf,
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        access: Access,
    },
    Tmpfs {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        size: u64,
        #[serde(serialize_with = "super::octal")]
        mode: u32,
    },
    Dir {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        #[serde(serialize_with = "super::octal")]
        mode: u32,
    },
    Symlink {
        #[serde(serialize_with = "super::lossy")]
        target: PathBuf,
        #[serde(serialize_with = "super::lossy")]
        link: PathBuf,
    },
    Proc {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        /// The entries that describe the host (mount::PROC_HIDDEN) are covered.
        /// `false` only for nesting: the kernel refuses a new proc mount inside a
        /// user namespace when any entry of the existing one is covered
        /// (mount_too_revealing in fs/namespace.c).
        hide_host: bool,
    },
    Dev {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        shm_size: u64,
    },
    File {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        #[serde(serialize_with = "super::text_or_size")]
        content: Vec<u8>,
        #[serde(serialize_with = "super::octal")]
        mode: u32,
    },
    Mqueue {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
    },
    /// `src` (read-only underneath) with writes kept on a tmpfs of `size` bytes and
    /// discarded when the sandbox ends.
    TmpOverlay {
        #[serde(serialize_with = "super::lossy")]
        src: PathBuf,
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
        size: u64,
    },
    /// Hide what is at `dst` (if anything): an empty read-only tmpfs over a directory,
    /// an empty read-only file over a file.
    Mask {
        #[serde(serialize_with = "super::lossy")]
        dst: PathBuf,
    },
}

impl MountOp {
    pub fn dst(&self) -> &Path {
        match self {
            MountOp::Bind { dst, .. }
            | MountOp::Tmpfs { dst, .. }
            | MountOp::Dir { dst, .. }
            | MountOp::Proc { dst, .. }
            | MountOp::Dev { dst, .. }
            | MountOp::File { dst, .. }
            | MountOp::Mqueue { dst }
            | MountOp::TmpOverlay { dst, .. }
            | MountOp::Mask { dst } => dst,
            MountOp::Symlink { link, .. } => link,
        }
    }

    /// The rights Landlock grants where this op lands (path, rights). Ops that add
    /// nothing of their own (dirs and symlinks on the read-only root, masks) get no
    /// rule and keep what is above them.
    pub fn landlock_rules(&self) -> Vec<(PathBuf, u64)> {
        let access = match self {
            MountOp::Bind { access, .. } => match access {
                Access::ReadOnly => landlock::READ,
                Access::ReadWrite => landlock::WRITE,
                Access::Device => landlock::DEVICE,
            },
            MountOp::Tmpfs { .. } | MountOp::TmpOverlay { .. } | MountOp::Mqueue { .. } => {
                landlock::WRITE
            }
            // Programs write to their own /proc entries (oom_score_adj; uid_map and
            // setgroups when a browser builds its own sandbox), with O_TRUNC.
            MountOp::Proc { .. } => landlock::READ | landlock::WRITE_FILE | landlock::TRUNCATE,
            // `> /dev/null` opens with O_TRUNC; ttys need their ioctls; /dev/shm is a
            // writable tmpfs of its own.
            MountOp::Dev { dst, .. } => {
                return vec![
                    (
                        dst.clone(),
                        landlock::READ
                            | landlock::WRITE_FILE
                            | landlock::TRUNCATE
                            | landlock::IOCTL_DEV,
                    ),
                    (dst.join("shm"), landlock::WRITE),
                ]
            }
            MountOp::File { .. } => landlock::READ_FILE,
            MountOp::Dir { .. } | MountOp::Symlink { .. } | MountOp::Mask { .. } => {
                return Vec::new()
            }
        };
        vec![(self.dst().to_path_buf(), access)]
    }

    /// The profile entry that makes this op (`--print-profile`): a `[[mount]]`
    /// table, or, for a mask, its place in the `mask` list. `created`: the bind
    /// source was made by sbx (`create = true`).
    pub fn profile_form(&self, created: bool) -> ProfileForm {
        let s = |v: &str| toml::Value::String(v.to_string());
        let p = |p: &Path| s(&p.to_string_lossy());
        let mode = |m: u32| s(&format!("{m:04o}"));
        let int = |n: u64| toml::Value::Integer(n as i64);
        let (kind, fields): (&str, Vec<(&str, toml::Value)>) = match self {
            MountOp::Bind { src, dst, access } => {
                let mut f = vec![("src", p(src)), ("dst", p(dst))];
                if created {
                    f.push(("create", toml::Value::Boolean(true)));
                }
                let kind = match access {
                    Access::ReadOnly => "ro-bind",
                    Access::ReadWrite => "bind",
                    Access::Device => "dev-bind",
                };
                (kind, f)
            }
            MountOp::Tmpfs {
                dst,
                size,
                mode: md,
            } => (
                "tmpfs",
                vec![("dst", p(dst)), ("size", int(*size)), ("mode", mode(*md))],
            ),
            MountOp::Dir { dst, mode: md } => ("dir", vec![("dst", p(dst)), ("mode", mode(*md))]),
            MountOp::File {
                dst,
                content,
                mode: md,
            } => {
                let text = match std::str::from_utf8(content) {
                    Ok(t) => t.to_string(),
                    Err(_) => format!("<{} bytes of binary data (an X11 cookie)>", content.len()),
                };
                (
                    "file",
                    vec![("dst", p(dst)), ("content", s(&text)), ("mode", mode(*md))],
                )
            }
            MountOp::Symlink { target, link } => {
                ("symlink", vec![("target", p(target)), ("dst", p(link))])
            }
            MountOp::Proc { dst, hide_host } => {
                let mut f = vec![("dst", p(dst))];
                if !hide_host {
                    f.push(("hide_host_entries", toml::Value::Boolean(false)));
                }
                ("proc", f)
            }
            MountOp::Mqueue { dst } => ("mqueue", vec![("dst", p(dst))]),
            MountOp::Dev { dst, shm_size } => {
                ("dev", vec![("dst", p(dst)), ("size", int(*shm_size))])
            }
            MountOp::TmpOverlay { src, dst, size } => (
                "tmp-overlay",
                vec![("src", p(src)), ("dst", p(dst)), ("size", int(*size))],
            ),
            MountOp::Mask { dst } => return ProfileForm::Mask(p(dst)),
        };
        let mut t = toml::Table::new();
        t.insert("type".into(), s(kind));
        t.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
        ProfileForm::Mount(t)
    }

    /// The dry-run and trace form (`-v`, errors, `--dry-run`).
    pub fn describe(&self) -> String {
        match self {
            MountOp::Bind { src, dst, access } => {
                format!(
                    "bind {} -> {} ({})",
                    src.display(),
                    dst.display(),
                    crate::sys::attr_names(access.attrs())
                )
            }
            MountOp::Tmpfs { dst, size, mode } => {
                format!("tmpfs {} (size={size}, mode={mode:o})", dst.display())
            }
            MountOp::Dir { dst, mode } => format!("dir {} (mode={mode:o})", dst.display()),
            MountOp::Symlink { target, link } => {
                format!("symlink {} -> {}", link.display(), target.display())
            }
            MountOp::Proc {
                dst,
                hide_host: true,
            } => format!("proc {}", dst.display()),
            MountOp::Proc {
                dst,
                hide_host: false,
            } => {
                format!("proc {} (host entries visible)", dst.display())
            }
            MountOp::Dev { dst, .. } => format!("dev {}", dst.display()),
            MountOp::File { dst, mode, .. } => format!("file {} (mode={mode:o})", dst.display()),
            MountOp::Mqueue { dst } => format!("mqueue {}", dst.display()),
            MountOp::TmpOverlay { src, dst, size } => {
                format!(
                    "tmp-overlay {} -> {} (size={size})",
                    src.display(),
                    dst.display()
                )
            }
            MountOp::Mask { dst } => format!("mask {}", dst.display()),
        }
    }
}

/// Where an op goes in a profile.
pub enum ProfileForm {
    Mount(toml::Table),
    Mask(toml::Value),
}

impl Access {
    /// The mount attributes of a bind with this access (mount_setattr(2)).
    pub fn attrs(self) -> u64 {
        let (ro, nosuid, nodev) = (
            libc::MOUNT_ATTR_RDONLY,
            libc::MOUNT_ATTR_NOSUID,
            libc::MOUNT_ATTR_NODEV,
        );
        match self {
            Access::ReadOnly => ro | nosuid | nodev,
            Access::ReadWrite => nosuid | nodev,
            Access::Device => nosuid,
        }
    }
}

/// A mount op and where it came from (the option or profile entry), for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(flatten)]
    pub op: MountOp,
    pub origin: String,
}

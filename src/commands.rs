//! The commands that never launch a sandbox: `--dry-run`, `--print-profile` and
//! `--check-profile` (tools), `--list`, `--inspect`, `--kill` and `--enter`
//! (manage, over the records of running sandboxes), `--doctor`.

pub mod doctor;
pub mod manage;
pub mod record;
pub mod tools;

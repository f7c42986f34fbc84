//! What runs beside a sandbox or after it, outside it: pasta (user-mode
//! networking), xdg-dbus-proxy (the filtered session bus), and the staging of a
//! repository's git directory (`--vcs commit`) with the index reader it uses.

pub mod dbus_proxy;
pub mod gitindex;
pub mod pasta;
pub mod vcs_stage;

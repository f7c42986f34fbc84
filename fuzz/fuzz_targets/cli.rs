//! The command-line parser and plan builder on arbitrary argv (NUL-separated,
//! any bytes). It must report errors, never panic.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    sbx::fuzz_cli(&args);
});

//! The profile loader on arbitrary text: parse, includes (built-ins only), variables,
//! every entry's rules. It must report errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        sbx::fuzz_profile(text);
    }
});

//! Text that came from a sandbox or a file (command lines, names, paths, profile
//! descriptions), made safe to print on the user's terminal: a file name holding
//! `ESC ] … BEL` or `ESC [ … ` would otherwise reach the terminal as a control
//! sequence (title changes, cursor moves, on some terminals answer-back that types
//! into the shell). Every control character (C0, DEL, C1) and the bidirectional
//! overrides (CVE-2021-42574, "Trojan Source") are written as escapes instead.

use std::borrow::Cow;

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character written as an escape (`\n`, `\t`, `\x1b`,
/// `\u{202e}`); unchanged (and not copied) when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Each line of `s` escaped, the line breaks kept (for multi-line messages such as
/// the command-line parser's).
pub fn escape_lines(s: &str) -> String {
    s.split('\n')
        .map(|l| escape(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A byte count for people: "512 MiB", "1.5 GiB", "100 B".
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if n % size == 0 {
                format!("{} {unit}", n / size)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes((1 << 30) + (1 << 29)), "1.5 GiB");
        assert_eq!(bytes(3 << 40), "3 TiB");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(escape("plain/path é"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(escape("x\ny\tz\r"), "x\\ny\\tz\\r");
        assert_eq!(escape("del\x7f c1\u{9b}31m"), "del\\x7f c1\\x9b31m");
        assert_eq!(escape("rlo\u{202e}txt.exe"), "rlo\\u{202e}txt.exe");
        assert_eq!(escape_lines("one\x1b\ntwo"), "one\\x1b\ntwo");
    }
}

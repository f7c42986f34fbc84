//! Which loose objects the sandbox wrote are what their names say, before any is
//! handed to the host's git: one zlib stream of exactly its declared size, a
//! canonical header (`blob 5`, not `blob +5` or `blob 05`, which git cannot parse),
//! and the SHA-1 of both its name. An object that is not (or is too large, or over
//! the budget: a few kilobytes of zlib can claim gigabytes) is left behind, so git
//! never spends time or disk on it.

use super::sha1;

/// The largest object passed on, and the most inflated in all.
pub const MAX_OBJECT: usize = 256 << 20;
pub const BUDGET: usize = 2 << 30;

/// Inflate `data` (one zlib stream, nothing after it) whose header declares its
/// size: the header first (64 bytes at most), then exactly that many bytes. None:
/// not such a stream, larger than `max`, or trailing bytes (git refuses "garbage at
/// end of loose object").
fn inflate(data: &[u8], max: usize) -> Option<Vec<u8>> {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};
    // The header first, from the stream's start.
    let mut head = [0u8; 64];
    let peek = inflate(
        &mut InflateState::new_boxed(DataFormat::Zlib),
        data,
        &mut head,
        MZFlush::None,
    );
    let got = &head[..peek.bytes_written];
    let nul = got.iter().position(|c| *c == 0)?;
    let total = nul + 1 + Some(declared_len(&got[..nul])?).filter(|l| *l <= max)?;
    // Then the whole of it in one call into a buffer of exactly the declared size:
    // a stream that ends early, goes on past it, or has bytes after its end fails.
    let mut out = vec![0u8; total];
    let r = inflate(
        &mut InflateState::new_boxed(DataFormat::Zlib),
        data,
        &mut out,
        MZFlush::Finish,
    );
    (matches!(r.status, Ok(MZStatus::StreamEnd))
        && r.bytes_written == total
        && r.bytes_consumed == data.len())
    .then_some(out)
}

/// The length in a header `type len` git writes: a known type, decimal digits
/// without a sign or a leading zero.
fn declared_len(header: &[u8]) -> Option<usize> {
    let (kind, len) = std::str::from_utf8(header).ok()?.split_once(' ')?;
    let canonical = !len.is_empty()
        && len.bytes().all(|c| c.is_ascii_digit())
        && (len == "0" || !len.starts_with('0'));
    (matches!(kind, "blob" | "tree" | "commit" | "tag") && canonical)
        .then(|| len.parse().ok())
        .flatten()
}

/// Whether `data` (a loose object file) is the object `oid` names; `budget` is what
/// may still be inflated, charged for what this one took.
pub fn is_named(data: &[u8], oid: &[u8; 20], budget: &mut usize) -> bool {
    let raw = match inflate(data, MAX_OBJECT.min(*budget)) {
        Some(r) => r,
        None => return false,
    };
    *budget = budget.saturating_sub(raw.len());
    sha1::digest(&raw) == *oid
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::compress_to_vec_zlib;

    fn object(header: &str, body: &[u8]) -> (Vec<u8>, [u8; 20]) {
        let mut raw = header.as_bytes().to_vec();
        raw.push(0);
        raw.extend_from_slice(body);
        (compress_to_vec_zlib(&raw, 6), sha1::digest(&raw))
    }

    #[test]
    fn only_an_object_that_is_what_its_name_says_passes() {
        let mut budget = BUDGET;
        let (z, oid) = object("blob 6", b"hello\n");
        assert!(is_named(&z, &oid, &mut budget));
        assert!(!is_named(&z, &[0; 20], &mut budget));
        // Headers git cannot parse, named by their own hash.
        for h in [
            "blob +6", "blob 06", "blob 6 ", "blob", "blurb 6", "blob -6",
        ] {
            let (z, oid) = object(h, b"hello\n");
            assert!(!is_named(&z, &oid, &mut budget), "{h}");
        }
        // A length that lies, either way.
        for h in ["blob 5", "blob 9"] {
            let (z, oid) = object(h, b"hello\n");
            assert!(!is_named(&z, &oid, &mut budget), "{h}");
        }
        // Trailing bytes after the stream.
        let (mut z, oid) = object("blob 6", b"hello\n");
        z.extend_from_slice(b"junk");
        assert!(!is_named(&z, &oid, &mut budget));
        // A bomb: 16 MiB of zeros in a few kilobytes, over the budget left: refused
        // before it is inflated; within the budget, it is what it says.
        let (z, oid) = object(&format!("blob {}", 16 << 20), &vec![0u8; 16 << 20]);
        assert!(z.len() < 1 << 20);
        let mut small = 1 << 20;
        assert!(!is_named(&z, &oid, &mut small));
        assert!(is_named(&z, &oid, &mut budget));
        // Larger than zlib's 32 KiB window, and not repetitive.
        let body: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (z, oid) = object(&format!("blob {}", body.len()), &body);
        assert!(is_named(&z, &oid, &mut budget));
        assert!(!is_named(b"plain text", &oid, &mut budget));
    }
}

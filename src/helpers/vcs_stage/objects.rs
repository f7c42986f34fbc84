//! Object ids as git spells them.

pub type Oid = [u8; 20];

/// 40 lowercase hex digits as an object id (git writes no other spelling).
pub fn parse_hex(b: &[u8]) -> Option<Oid> {
    if b.len() != 40 {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).filter(|_| !c.is_ascii_uppercase());
    let mut oid = [0u8; 20];
    for (i, o) in oid.iter_mut().enumerate() {
        *o = (d(b[2 * i])? * 16 + d(b[2 * i + 1])?) as u8;
    }
    Some(oid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_git_s_spelling_parses() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(super::parse_hex(a.as_bytes()).unwrap()[1], 0x23);
        assert!(super::parse_hex(a.to_uppercase().as_bytes()).is_none());
        assert!(super::parse_hex(&a.as_bytes()[..39]).is_none());
        assert!(super::parse_hex(b"g123456789abcdef0123456789abcdef01234567").is_none());
    }
}

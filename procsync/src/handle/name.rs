//! Object names: Win32 rules, and their encoding as file names.
//!
//! `Local\X` and `X` name the same object in the caller's namespace; `Global\X` one in
//! the shared namespace (NM-05..07). Any other `Prefix\` is refused, and so is a
//! backslash after the prefix (NM-09). Every other character, `/`, dots and spaces
//! included, is ordinary (NM-10): names are case-sensitive (NM-01) and at most 32 767
//! UTF-16 units long (NM-14), as on Windows.
//!
//! A name becomes a file name that can never escape its directory: `o` followed by the
//! name with every byte outside `[A-Za-z0-9._-]` written `%XX`; a name whose encoding
//! would pass 200 bytes is stored as `h` followed by the hex SHA-256 of the name.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::shm::root::NsKind;

/// Longest name, in UTF-16 units (Windows' UNICODE_STRING limit).
pub const MAX_NAME_UNITS: usize = 32_767;
const MAX_PLAIN_FILE_NAME: usize = 200;

/// A parsed, valid name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub ns: NsKind,
    /// The part after the prefix.
    pub base: String,
    /// File name in the namespace directory.
    pub file: String,
}

fn short(name: &str) -> String {
    if name.chars().count() > 80 {
        format!("{}…", name.chars().take(80).collect::<String>())
    } else {
        name.to_string()
    }
}

/// Parses `name`; `Ok(None)` for the empty name (an unnamed object, NM-12).
pub(crate) fn parse(name: &str) -> Result<Option<Name>> {
    if name.is_empty() {
        return Ok(None);
    }
    let bad = |why| Error::InvalidName {
        name: short(name),
        why,
    };
    let (ns, base) = if let Some(rest) = name.strip_prefix("Local\\") {
        (NsKind::Local, rest)
    } else if let Some(rest) = name.strip_prefix("Global\\") {
        (NsKind::Global, rest)
    } else if name.contains('\\') {
        return Err(bad(
            "unknown namespace prefix; write `Local\\name`, `Global\\name` or a name without a backslash",
        ));
    } else {
        (NsKind::Local, name)
    };
    if base.is_empty() {
        return Err(bad(
            "nothing follows the namespace prefix; add a name after it",
        ));
    }
    if base.contains('\\') {
        return Err(bad(
            "a backslash may not appear after the namespace prefix; use another character such as `/`",
        ));
    }
    if base.contains('\0') {
        return Err(bad("a name may not contain a NUL character"));
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(bad("longer than 32767 characters; shorten it"));
    }
    Ok(Some(Name {
        ns,
        base: base.to_string(),
        file: encode(base),
    }))
}

/// The file name for `base` (see the module doc).
pub(crate) fn encode(base: &str) -> String {
    let mut out = String::with_capacity(base.len() + 1);
    out.push('o');
    for &b in base.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        if out.len() > MAX_PLAIN_FILE_NAME {
            break;
        }
    }
    if out.len() > MAX_PLAIN_FILE_NAME {
        let digest = Sha256::digest(base.as_bytes());
        let mut h = String::with_capacity(65);
        h.push('h');
        for b in digest.iter() {
            h.push_str(&format!("{b:02x}"));
        }
        return h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_refusals() {
        // (input, namespace or None for refused, base)
        let table: &[(&str, Option<NsKind>, &str)] = &[
            ("x", Some(NsKind::Local), "x"),
            ("Local\\x", Some(NsKind::Local), "x"),
            ("Global\\x", Some(NsKind::Global), "x"),
            ("a/b/../c", Some(NsKind::Local), "a/b/../c"),
            ("local\\x", None, ""),
            ("Foo\\x", None, ""),
            ("Local\\a\\b", None, ""),
            ("Global\\", None, ""),
            ("a\0b", None, ""),
        ];
        for (input, ns, base) in table {
            match (parse(input), ns) {
                (Ok(Some(n)), Some(ns)) => {
                    assert_eq!(n.ns, *ns, "{input}");
                    assert_eq!(n.base, *base, "{input}");
                }
                (Err(Error::InvalidName { .. }), None) => {}
                (r, _) => panic!("{input}: unexpected {r:?}"),
            }
        }
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn encoding_never_escapes_and_is_injective_on_samples() {
        for n in ["..", ".", "/", "a/b", "%2F", "é", " ", "x y"] {
            let f = encode(n);
            assert!(f.starts_with('o'));
            assert!(!f.contains('/'), "{f}");
        }
        assert_ne!(encode("/"), encode("%2F"));
        assert_ne!(encode("A"), encode("a"));
        let long = "n".repeat(1000);
        let f = encode(&long);
        assert!(f.starts_with('h') && f.len() == 65);
        assert_ne!(encode(&long), encode(&"n".repeat(1001)));
        assert!(parse(&"x".repeat(MAX_NAME_UNITS)).is_ok());
        assert!(parse(&"x".repeat(MAX_NAME_UNITS + 1)).is_err());
    }
}

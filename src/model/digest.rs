//! A manifest digest held in place: a `sha256:` digest (what registries send) as its 32 bytes,
//! any other as its text. A plan holds two per entry while every entry is looked up; as text on
//! the heap they were small blocks left among the lookups' own short-lived ones, and a
//! 100,000-tag no-op held 37 MB more for it than without them.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Digest {
    Sha256([u8; 32]),
    Other(Box<str>),
}

impl Digest {
    /// `text` as a digest: `sha256:` and 64 lowercase hex digits in 32 bytes, else as given
    /// (which it gives back the same).
    pub fn new(text: &str) -> Digest {
        let sha256 = text
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64)
            .and_then(|hex| {
                let mut bytes = [0; 32];
                for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
                    *byte = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
                }
                Some(bytes)
            });
        match sha256 {
            Some(bytes) => Digest::Sha256(bytes),
            None => Digest::Other(text.into()),
        }
    }
}

fn lower_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Sha256(bytes) => {
                f.write_str("sha256:")?;
                bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Digest::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl From<&str> for Digest {
    fn from(text: &str) -> Digest {
        Digest::new(text)
    }
}

impl From<String> for Digest {
    fn from(text: String) -> Digest {
        Digest::new(&text)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.to_string()
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_reads_back_as_it_was_given() {
        let sha256 = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let texts = [
            sha256.as_str(),
            // Not lowercase, not 64 digits, another algorithm: kept as text, the same.
            "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:abc",
            "sha512:00ff",
            "",
        ];
        for text in texts {
            let digest = Digest::new(text);
            assert_eq!(digest.to_string(), text);
            assert_eq!(String::from(digest.clone()), text);
            assert_eq!(serde_json::to_value(&digest).unwrap(), text);
            assert_eq!(format!("{digest:?}"), format!("{text:?}"));
        }
        assert!(matches!(Digest::new(&sha256), Digest::Sha256(_)));
        assert!(matches!(Digest::new(texts[1]), Digest::Other(_)));
        assert_eq!(Digest::new(&sha256), Digest::from(sha256.clone()));
    }
}

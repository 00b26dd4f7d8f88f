//! Secret material: never printed, compared in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// Secret bytes. `Debug` prints `Secret([redacted])`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes, for the one place that must use them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Constant-time equality of two byte strings of possibly different lengths: both are
/// hashed first, so neither content nor length leaks through timing.
pub fn ct_eq_any_len(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// Constant-time equality of two MACs (their length is public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Feeds the pieces of a message to a sink, so a MAC can be computed over a rendered
/// template without first copying it (and the body in it) into one buffer.
pub type Feed<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8]));

/// Hash function of an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// HMAC-SHA1 (legacy providers: GitHub's old header, Twilio).
    Sha1,
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA384.
    Sha384,
    /// HMAC-SHA512.
    Sha512,
}

impl HashAlgorithm {
    /// Computes HMAC(key, message pieces).
    pub fn mac(self, key: &[u8], feed: Feed<'_>) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], feed: Feed<'_>) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            feed(&mut |bytes| mac.update(bytes));
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            HashAlgorithm::Sha1 => run::<Hmac<Sha1>>(key, feed),
            HashAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, feed),
            HashAlgorithm::Sha384 => run::<Hmac<Sha384>>(key, feed),
            HashAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, feed),
        }
    }

    /// The name operators know: `SHA256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha384 => "SHA384",
            HashAlgorithm::Sha512 => "SHA512",
        }
    }

    /// HMAC of one message.
    pub fn mac_of(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        self.mac(key, &mut |sink| sink(message))
    }
}

/// How a signature is written in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Hexadecimal, either case.
    #[default]
    Hex,
    /// Standard base64 with padding (padding optional when reading).
    Base64,
    /// URL-safe base64 without padding (padding tolerated when reading).
    Base64url,
}

impl Encoding {
    /// Decodes `text`; `None` when it is not in this encoding.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let text = text.trim();
        match self {
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .ok(),
            Encoding::Base64url => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok(),
        }
    }

    /// Encodes `bytes` the way providers write them (hex in lower case).
    pub fn encode(self, bytes: &[u8]) -> String {
        use base64::Engine as _;
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
            Encoding::Base64url => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        }
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    Encoding::Base64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }

    #[test]
    fn comparisons() {
        assert!(ct_eq_any_len(b"abc", b"abc"));
        assert!(!ct_eq_any_len(b"abc", b"abcd"));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn encodings_round_trip() {
        for enc in [Encoding::Hex, Encoding::Base64, Encoding::Base64url] {
            let bytes = [0u8, 250, 251, 252, 253, 254, 255];
            assert_eq!(enc.decode(&enc.encode(&bytes)).unwrap(), bytes, "{enc:?}");
        }
        assert_eq!(Encoding::Hex.decode("ABCD").unwrap(), vec![0xab, 0xcd]);
        assert!(Encoding::Hex.decode("xyz").is_none());
    }
}

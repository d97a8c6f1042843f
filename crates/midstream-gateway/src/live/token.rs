//! Signed stream tokens: what an `events_url` carries, because `EventSource` cannot send an
//! `Authorization` header.
//!
//! A token is `EXPIRY.KEY.MAC`: the Unix second it expires, the hex of the API key id that
//! started the stream (empty in open mode), and HMAC-SHA256 over the stream id, the key id and
//! the expiry. It grants reading and cancelling that one stream until it expires; it is bound
//! to the stream (the id is in the MAC, not in the token), so it cannot be moved to another.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::Caller;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks stream tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    /// HMAC keyed with the secret once: each token then clones it instead of hashing the
    /// key's inner and outer blocks again (half the work of a token).
    keyed: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with this secret.
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            keyed: HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self, stream: &str, key: &str, expires: u64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        for part in ["v1", stream, key, &expires.to_string()] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac
    }

    /// A token for `caller` on `stream`, valid until `expires` (Unix seconds).
    pub fn sign(&self, stream: &str, caller: &Caller, expires: u64) -> String {
        let key = caller.key_id.as_deref().unwrap_or_default();
        let mac = self.mac(stream, key, expires).finalize().into_bytes();
        format!("{expires}.{}.{}", hex::encode(key), hex::encode(mac))
    }

    /// The caller a token was signed for, if it is genuine, for `stream`, and not expired at
    /// `now` (Unix seconds).
    pub fn verify(&self, stream: &str, token: &str, now: u64) -> Option<Caller> {
        let mut parts = token.split('.');
        let (expires, key, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        let key = String::from_utf8(hex::decode(key).ok()?).ok()?;
        let mac = hex::decode(mac).ok()?;
        self.mac(stream, &key, expires).verify_slice(&mac).ok()?;
        (now < expires).then(|| Caller {
            key_id: (!key.is_empty()).then_some(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key: Option<&str>) -> Caller {
        Caller {
            key_id: key.map(str::to_owned),
        }
    }

    #[test]
    fn a_token_is_valid_for_its_stream_and_key_until_it_expires() {
        let signer = Signer::new(b"secret");
        for key in [Some("key_1"), None] {
            let token = signer.sign("s1", &caller(key), 100);
            assert_eq!(signer.verify("s1", &token, 99), Some(caller(key)));
            assert_eq!(signer.verify("s1", &token, 100), None, "expired");
            assert_eq!(signer.verify("s2", &token, 99), None, "another stream");
        }
    }

    #[test]
    fn forged_or_mangled_tokens_are_refused() {
        let signer = Signer::new(b"secret");
        let token = signer.sign("s1", &caller(Some("key_1")), 100);
        assert_eq!(Signer::new(b"other").verify("s1", &token, 1), None);
        let (expiry, rest) = token.split_once('.').expect("dot");
        let longer = format!("{}.{rest}", expiry.parse::<u64>().expect("n") + 1000);
        assert_eq!(signer.verify("s1", &longer, 1), None, "expiry is signed");
        let other_key = signer
            .sign("s1", &caller(Some("key_2")), 100)
            .split('.')
            .nth(1)
            .map(str::to_owned)
            .expect("key");
        let parts: Vec<&str> = token.split('.').collect();
        let swapped = format!("{}.{other_key}.{}", parts[0], parts[2]);
        assert_eq!(signer.verify("s1", &swapped, 1), None, "key is signed");
        for junk in ["", "1.2", "x.y.z", "1..", "1.zz.00", &format!("{token}.x")] {
            assert_eq!(signer.verify("s1", junk, 1), None, "{junk:?}");
        }
    }
}

//! A relay's address: `hum://HOST:PORT#FINGERPRINT` (docs/PROTOCOL.md §1).
//!
//! The fingerprint is the SHA-256 of the relay's certificate (DER), in lowercase hex: the
//! same value `openssl x509 -noout -fingerprint -sha256` prints, without the colons. A
//! client pins it instead of trusting any certificate authority.

use std::fmt;
use std::str::FromStr;

/// The scheme every relay address starts with.
pub const RELAY_SCHEME: &str = "hum://";

/// The SHA-256 of a relay's TLS certificate (DER), which clients pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint(pub [u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        let mut out = [0u8; 32];
        // SHA-256 of an in-memory slice only fails for inputs beyond 2^61 bytes.
        if let Ok(d) = orion::hazardous::hash::sha2::sha256::Sha256::digest(der) {
            out.copy_from_slice(d.as_ref());
        }
        Self(out)
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

impl FromStr for CertFingerprint {
    type Err = AddrError;

    /// Reads 64 hex digits (either case; colons between bytes, as openssl prints them,
    /// are accepted).
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err(AddrError::FingerprintLength(hex.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_digit(b: u8) -> Result<u8, AddrError> {
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(AddrError::FingerprintDigit(char::from(b))),
    }
}

/// Where a relay is and which certificate it must present.
///
/// ```
/// use hum_shared::RelayAddr;
/// let fp = "ab".repeat(32);
/// let addr: RelayAddr = format!("hum://[::1]:7667#{fp}").parse()?;
/// assert_eq!(addr.host, "::1");
/// assert_eq!(addr.port, 7667);
/// assert_eq!(addr.to_string(), format!("hum://[::1]:7667#{fp}"));
/// # Ok::<(), hum_shared::AddrError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayAddr {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The pinned certificate fingerprint.
    pub fingerprint: CertFingerprint,
}

impl RelayAddr {
    /// The `host:port` string to connect to (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RELAY_SCHEME}{}#{}", self.host_port(), self.fingerprint)
    }
}

impl FromStr for RelayAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        let s = s.trim();
        let rest = s.strip_prefix(RELAY_SCHEME).ok_or(AddrError::Scheme)?;
        let (hostport, fp) = rest.split_once('#').ok_or(AddrError::MissingFingerprint)?;
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(AddrError::Host)?;
            let port = after.strip_prefix(':').ok_or(AddrError::MissingPort)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(AddrError::Host);
            }
            (host, port)
        } else {
            let (host, port) = hostport.rsplit_once(':').ok_or(AddrError::MissingPort)?;
            if host.contains(':') {
                // An IPv6 address must be written in brackets.
                return Err(AddrError::Host);
            }
            (host, port)
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
        {
            return Err(AddrError::Host);
        }
        let port: u16 = port.parse().map_err(|_| AddrError::Port)?;
        if port == 0 {
            return Err(AddrError::Port);
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            fingerprint: fp.parse()?,
        })
    }
}

/// Why a relay address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// It does not start with `hum://`.
    #[error("a relay address starts with hum://")]
    Scheme,
    /// There is no `#FINGERPRINT` part.
    #[error("the relay address has no #fingerprint at the end")]
    MissingFingerprint,
    /// There is no `:PORT` after the host.
    #[error("the relay address has no :port after the host")]
    MissingPort,
    /// The host is empty or not a valid name or address (IPv6 needs brackets).
    #[error("the relay address has an invalid host (write IPv6 addresses in brackets)")]
    Host,
    /// The port is not a number between 1 and 65535.
    #[error("the relay address has an invalid port (1 to 65535)")]
    Port,
    /// The fingerprint does not have 64 hex digits.
    #[error("the fingerprint has {0} hex digits instead of 64")]
    FingerprintLength(usize),
    /// The fingerprint holds something other than hex digits.
    #[error("the fingerprint holds {0:?}, which is not a hex digit")]
    FingerprintDigit(char),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> String {
        "0123456789abcdef".repeat(4)
    }

    #[test]
    fn round_trips_names_v4_and_v6() -> Result<(), AddrError> {
        for s in [
            format!("hum://relay.example.org:7667#{}", fp()),
            format!("hum://127.0.0.1:1#{}", fp()),
            format!("hum://[2001:db8::1]:443#{}", fp()),
        ] {
            let a: RelayAddr = s.parse()?;
            assert_eq!(a.to_string(), s);
        }
        Ok(())
    }

    #[test]
    fn openssl_style_fingerprints_are_accepted() -> Result<(), AddrError> {
        let colons = fp()
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<CertFingerprint>()?.to_string(), fp());
        Ok(())
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let f = fp();
        let cases = [
            (format!("http://h:1#{f}"), AddrError::Scheme),
            ("hum://h:1".to_owned(), AddrError::MissingFingerprint),
            (format!("hum://h#{f}"), AddrError::MissingPort),
            (format!("hum://::1:5#{f}"), AddrError::Host),
            (format!("hum://[zz]:5#{f}"), AddrError::Host),
            (format!("hum://:5#{f}"), AddrError::Host),
            (format!("hum://h:0#{f}"), AddrError::Port),
            (format!("hum://h:70000#{f}"), AddrError::Port),
            ("hum://h:1#abc".to_owned(), AddrError::FingerprintLength(3)),
            (
                format!("hum://h:1#{}", "g".repeat(64)),
                AddrError::FingerprintDigit('g'),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<RelayAddr>(), Err(want), "{s}");
        }
    }

    #[test]
    fn fingerprint_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            CertFingerprint::of_certificate(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

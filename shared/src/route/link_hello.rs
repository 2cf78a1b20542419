//! The first frame each end of a relay link sends, and what the two agree on.

use super::kdf;
use super::{MAX_BUCKETS, RELAY_ID_LEN, RelayId, RouteError};

/// The ALPN protocol name of relay links.
pub const ALPN_LINK: &[u8] = b"hum/2-link";
/// The magic a link hello starts with.
pub const LINK_MAGIC: [u8; 8] = *b"hum/2lnk";
/// Length of a [`LinkHello`].
pub const LINK_HELLO_LEN: usize = 8 + RELAY_ID_LEN + 1 + 4 + 8 + 2 + 2 + 4 + 1;
/// The most slots per tick a link may carry each way.
pub const MAX_LINK_CAPACITY: u16 = 4_096;

/// What a relay is in a mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    /// Faces clients only.
    Entry,
    /// Holds buckets only.
    Mailbox,
    /// Both.
    Both,
}

impl LinkRole {
    /// Whether the relay holds buckets.
    pub fn is_mailbox(self) -> bool {
        matches!(self, LinkRole::Mailbox | LinkRole::Both)
    }
}

/// A link hello (docs/PROTOCOL.md, hum/2 §H5.1): `magic (8) || relay id (8) || role (1:
/// entry, 2: mailbox, 3: both) || tick micros (u32) || tick (u64) || capacity (u16) ||
/// buckets (u16, 0 without the mailbox role) || epoch ticks (u32) || flag bits (u8)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkHello {
    /// The sender's id.
    pub relay: RelayId,
    /// The sender's role.
    pub role: LinkRole,
    /// The sender's beat in microseconds; both ends must use the same.
    pub tick_micros: u32,
    /// The sender's tick now.
    pub tick: u64,
    /// Slots per tick between the two (from the relays file); both ends must agree.
    pub capacity: u16,
    /// The sender's bucket count (0 for an entry relay).
    pub buckets: u16,
    /// The sender's ticks per epoch (0 for an entry relay).
    pub epoch_ticks: u32,
    /// The sender's flag bits (0 for an entry relay).
    pub flag_bits: u8,
}

/// The frame sizes of one direction of a link: slots per tick and the sending mailbox
/// relay's bucket count (for stream batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Entries per batch.
    pub capacity: usize,
    /// Items per stream batch (the sender's buckets; 0 if it sends none).
    pub buckets: usize,
}

/// The two directions of an agreed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreedLink {
    /// For the frames we send.
    pub outgoing: LinkConfig,
    /// For the frames we receive.
    pub incoming: LinkConfig,
}

impl LinkHello {
    /// The hello's bytes.
    pub fn encode(&self) -> [u8; LINK_HELLO_LEN] {
        let mut out = [0u8; LINK_HELLO_LEN];
        out[..8].copy_from_slice(&LINK_MAGIC);
        out[8..16].copy_from_slice(self.relay.as_bytes());
        out[16] = match self.role {
            LinkRole::Entry => 1,
            LinkRole::Mailbox => 2,
            LinkRole::Both => 3,
        };
        out[17..21].copy_from_slice(&self.tick_micros.to_be_bytes());
        out[21..29].copy_from_slice(&self.tick.to_be_bytes());
        out[29..31].copy_from_slice(&self.capacity.to_be_bytes());
        out[31..33].copy_from_slice(&self.buckets.to_be_bytes());
        out[33..37].copy_from_slice(&self.epoch_ticks.to_be_bytes());
        out[37] = self.flag_bits;
        out
    }

    /// Reads a hello.
    ///
    /// # Errors
    /// [`RouteError::Length`]; [`RouteError::Malformed`] for the magic, the role, or
    /// mailbox parameters out of range; [`RouteError::Link`] for a capacity or tick out of
    /// range.
    pub fn decode(bytes: &[u8]) -> Result<LinkHello, RouteError> {
        let bytes = kdf::exact::<LINK_HELLO_LEN>("link hello", bytes)?;
        if bytes[..8] != LINK_MAGIC {
            return Err(RouteError::Malformed("link hello magic"));
        }
        let role = match bytes[16] {
            1 => LinkRole::Entry,
            2 => LinkRole::Mailbox,
            3 => LinkRole::Both,
            _ => return Err(RouteError::Malformed("link role")),
        };
        let hello = LinkHello {
            relay: RelayId::from_bytes(kdf::take(bytes, 8)),
            role,
            tick_micros: kdf::u32_at(bytes, 17),
            tick: kdf::u64_at(bytes, 21),
            capacity: kdf::u16_at(bytes, 29),
            buckets: kdf::u16_at(bytes, 31),
            epoch_ticks: kdf::u32_at(bytes, 33),
            flag_bits: bytes[37],
        };
        hello.check()?;
        Ok(hello)
    }

    fn check(&self) -> Result<(), RouteError> {
        if self.capacity == 0 || self.capacity > MAX_LINK_CAPACITY {
            return Err(RouteError::Link("capacity out of range"));
        }
        if self.tick_micros == 0 {
            return Err(RouteError::Link("tick out of range"));
        }
        if self.role.is_mailbox() {
            if self.buckets == 0 || self.buckets > MAX_BUCKETS || self.epoch_ticks == 0 {
                return Err(RouteError::Malformed("link mailbox parameters"));
            }
            super::flag_mask(self.flag_bits)?;
        } else if self.buckets != 0 || self.epoch_ticks != 0 || self.flag_bits != 0 {
            return Err(RouteError::Malformed("link entry parameters"));
        }
        Ok(())
    }

    /// Checks the peer's hello against ours and the peer we expect (`peer_id`, from the
    /// pinned fingerprint of the relays file), and returns the frame sizes of the link.
    ///
    /// # Errors
    /// [`RouteError::Link`] if the peer is another relay, the beats differ, the
    /// capacities differ, or neither end holds buckets.
    pub fn agree(&self, peer: &LinkHello, peer_id: RelayId) -> Result<AgreedLink, RouteError> {
        self.check()?;
        peer.check()?;
        if peer.relay != peer_id {
            return Err(RouteError::Link("peer is not the relay expected"));
        }
        if peer.tick_micros != self.tick_micros {
            return Err(RouteError::Link("tick lengths differ"));
        }
        if peer.capacity != self.capacity {
            return Err(RouteError::Link("capacities differ"));
        }
        if !self.role.is_mailbox() && !peer.role.is_mailbox() {
            return Err(RouteError::Link(
                "two entry relays have nothing to exchange",
            ));
        }
        let capacity = usize::from(self.capacity);
        Ok(AgreedLink {
            outgoing: LinkConfig {
                capacity,
                buckets: usize::from(self.buckets),
            },
            incoming: LinkConfig {
                capacity,
                buckets: usize::from(peer.buckets),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(role: LinkRole) -> LinkHello {
        let mailbox = role.is_mailbox();
        LinkHello {
            relay: RelayId::from_bytes([1; 8]),
            role,
            tick_micros: 100_000,
            tick: 5,
            capacity: 512,
            buckets: if mailbox { 64 } else { 0 },
            epoch_ticks: if mailbox { 36_000 } else { 0 },
            flag_bits: if mailbox { 8 } else { 0 },
        }
    }

    #[test]
    fn round_trip_and_agreement() -> Result<(), RouteError> {
        let e = hello(LinkRole::Entry);
        let mut m = hello(LinkRole::Mailbox);
        m.relay = RelayId::from_bytes([2; 8]);
        assert_eq!(LinkHello::decode(&m.encode())?, m);
        let link = e.agree(&m, m.relay)?;
        assert_eq!(link.incoming.buckets, 64);
        assert_eq!(link.outgoing.buckets, 0);
        assert_eq!(
            e.agree(&m, e.relay),
            Err(RouteError::Link("peer is not the relay expected"))
        );
        let mut slow = m;
        slow.tick_micros = 50_000;
        assert_eq!(
            e.agree(&slow, m.relay),
            Err(RouteError::Link("tick lengths differ"))
        );
        let mut small = m;
        small.capacity = 8;
        assert_eq!(
            e.agree(&small, m.relay),
            Err(RouteError::Link("capacities differ"))
        );
        let mut other_entry = e;
        other_entry.relay = m.relay;
        assert!(e.agree(&other_entry, m.relay).is_err());
        Ok(())
    }

    #[test]
    fn malformed_hellos() {
        let mut b = hello(LinkRole::Both).encode();
        b[16] = 9;
        assert_eq!(
            LinkHello::decode(&b),
            Err(RouteError::Malformed("link role"))
        );
        let mut b = hello(LinkRole::Entry).encode();
        b[31] = 1;
        assert!(LinkHello::decode(&b).is_err());
        let mut b = hello(LinkRole::Mailbox).encode();
        b[29..31].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            LinkHello::decode(&b),
            Err(RouteError::Link("capacity out of range"))
        );
        assert!(LinkHello::decode(&b[..10]).is_err());
    }
}

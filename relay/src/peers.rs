//! The relays file (`--peers FILE`): the other relays of a hum/2 mesh, each with its
//! pinned address, its role and the capacity of the link between us (docs/RELAY.md).
//!
//! ```toml
//! [[relay]]
//! address = "hum://10.0.0.2:7667#<fingerprint>"
//! role = "mailbox"
//! capacity = 512
//! ```

use std::path::Path;

use hum_shared::RelayAddr;
use hum_shared::route::{LinkRole, MAX_LINK_CAPACITY, RelayId};
use serde::Deserialize;

use crate::RelayError;

/// What a relay does in a mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Role {
    /// Faces clients: holds their connections and routes their slots, holds no messages.
    Entry,
    /// Holds buckets: opens slots as a home relay, stores and streams items.
    Mailbox,
    /// Both (the default; with no peers, the single relay).
    #[default]
    Both,
}

impl Role {
    /// Whether the role faces clients.
    pub fn is_entry(self) -> bool {
        matches!(self, Role::Entry | Role::Both)
    }

    /// Whether the role holds buckets.
    pub fn is_mailbox(self) -> bool {
        matches!(self, Role::Mailbox | Role::Both)
    }

    /// The role as the link hello names it.
    pub(crate) fn link_role(self) -> LinkRole {
        match self {
            Role::Entry => LinkRole::Entry,
            Role::Mailbox => LinkRole::Mailbox,
            Role::Both => LinkRole::Both,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "entry" => Ok(Role::Entry),
            "mailbox" => Ok(Role::Mailbox),
            "both" => Ok(Role::Both),
            _ => Err(format!("unknown role {s:?} (entry, mailbox or both)")),
        }
    }
}

/// One peer relay of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// Where it listens, with the fingerprint of its certificate (pinned both ways).
    pub address: RelayAddr,
    /// What it does.
    pub role: Role,
    /// Slots per tick each way on the link (both ends must agree).
    pub capacity: u16,
}

impl Peer {
    /// A peer.
    pub fn new(address: RelayAddr, role: Role, capacity: u16) -> Self {
        Self {
            address,
            role,
            capacity,
        }
    }

    /// The peer's relay id.
    pub fn id(&self) -> RelayId {
        RelayId::of_fingerprint(&self.address.fingerprint)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    relay: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    address: String,
    role: String,
    capacity: u16,
}

/// Reads a relays file.
///
/// # Errors
/// [`RelayError::Peers`] naming the file and what is wrong in it.
pub fn load_peers(path: &Path) -> Result<Vec<Peer>, RelayError> {
    let text = std::fs::read_to_string(path).map_err(|e| RelayError::Peers {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_peers(&text).map_err(|reason| RelayError::Peers {
        path: path.to_path_buf(),
        reason,
    })
}

/// Reads the text of a relays file.
fn parse_peers(text: &str) -> Result<Vec<Peer>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut peers = Vec::with_capacity(file.relay.len());
    for (i, e) in file.relay.into_iter().enumerate() {
        let n = i + 1;
        let address: RelayAddr = e
            .address
            .parse()
            .map_err(|err| format!("relay {n}: address {:?}: {err}", e.address))?;
        let role = e.role.parse().map_err(|err| format!("relay {n}: {err}"))?;
        if e.capacity == 0 || e.capacity > MAX_LINK_CAPACITY {
            return Err(format!(
                "relay {n}: capacity must be 1 to {MAX_LINK_CAPACITY}, not {}",
                e.capacity
            ));
        }
        let peer = Peer::new(address, role, e.capacity);
        if peers.iter().any(|p: &Peer| p.id() == peer.id()) {
            return Err(format!("relay {n}: listed twice"));
        }
        peers.push(peer);
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn reads_a_relays_file_and_names_what_is_wrong() -> Result<(), String> {
        let ok = format!(
            "[[relay]]\naddress = \"hum://10.0.0.2:7667#{FP}\"\nrole = \"mailbox\"\ncapacity = 512\n"
        );
        let peers = parse_peers(&ok)?;
        assert_eq!(peers.len(), 1);
        assert_eq!((peers[0].role, peers[0].capacity), (Role::Mailbox, 512));
        assert_eq!(peers[0].address.port, 7667);
        assert!(parse_peers("")?.is_empty());
        let bad_role = ok.replace("mailbox", "archive");
        assert!(parse_peers(&bad_role).is_err_and(|e| e.contains("unknown role")));
        let zero = ok.replace("512", "0");
        assert!(parse_peers(&zero).is_err_and(|e| e.contains("capacity")));
        let no_pin = ok.replace(&format!("#{FP}"), "");
        assert!(parse_peers(&no_pin).is_err_and(|e| e.contains("relay 1: address")));
        let twice = format!("{ok}{ok}");
        assert!(parse_peers(&twice).is_err_and(|e| e.contains("listed twice")));
        assert!(parse_peers(&format!("{ok}colour = 1\n")).is_err());
        Ok(())
    }
}

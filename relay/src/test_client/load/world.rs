//! The load's social world, known in full to the load generator (its ground truth): the
//! users and where they enter and are homed, a random contact graph, groups, and every
//! key a handshake would have given them, made into one [`Profile`] per user.

use hum_shared::RelayAddr;
use hum_shared::crypto::GroupId;
use hum_shared::route::{GroupTagKey, TagKey};

use super::super::{Behaviour, Card, Profile, Rng};

/// Where users enter and are homed: users are dealt round robin over the lanes.
#[derive(Debug, Clone)]
pub struct Topology {
    /// (entry relay, home relay) of each lane.
    pub lanes: Vec<(RelayAddr, RelayAddr)>,
}

impl Topology {
    /// Every home relay, once (the relays a client pins).
    pub fn homes(&self) -> Vec<RelayAddr> {
        let mut out: Vec<RelayAddr> = Vec::new();
        for (_, h) in &self.lanes {
            if !out.iter().any(|o| o.fingerprint == h.fingerprint) {
                out.push(h.clone());
            }
        }
        out
    }
}

/// The shape of the world.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Users.
    pub users: usize,
    /// Fewest and most contacts per user.
    pub contacts: (usize, usize),
    /// Groups.
    pub groups: usize,
    /// Fewest and most members per group.
    pub group_size: (usize, usize),
}

/// One user as the world knows it.
#[derive(Debug, Clone)]
pub struct User {
    /// Its lane (entry and home relay).
    pub lane: usize,
    /// Its card.
    pub card: Card,
    /// Its contacts, by user, in the order of its profile's contacts.
    pub contacts: Vec<usize>,
    /// Its groups, by group, in the order of its profile's groups.
    pub groups: Vec<usize>,
}

/// The world: users, the contact graph, the groups.
#[derive(Debug, Clone)]
pub struct World {
    /// Every user.
    pub users: Vec<User>,
    /// Every contact pair, smaller user first.
    pub edges: Vec<(usize, usize)>,
    /// Every group's members, by user.
    pub groups: Vec<Vec<usize>>,
}

impl World {
    /// A random world of `shape` over `topology`, from `rng`.
    pub fn generate(shape: Shape, topology: &Topology, rng: &mut Rng) -> Self {
        let n = shape.users;
        let lanes = topology.lanes.len().max(1);
        let mut users: Vec<User> = (0..n)
            .map(|i| User {
                lane: i % lanes,
                card: Card::new(topology.lanes[i % lanes].1.clone()),
                contacts: Vec::new(),
                groups: Vec::new(),
            })
            .collect();
        let (lo, hi) = shape.contacts;
        let want: Vec<usize> = (0..n).map(|_| rng.between(lo, hi)).collect();
        let mut edges = Vec::new();
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        for &u in &order {
            let mut tries = 0;
            while users[u].contacts.len() < want[u] && tries < 50 * n {
                tries += 1;
                let v = rng.below(n);
                // A partner with room left, or, failing that, one still under the most.
                let room = users[v].contacts.len() < want[v]
                    || (tries > 20 * n && users[v].contacts.len() < hi);
                if v == u || !room || users[u].contacts.contains(&v) {
                    continue;
                }
                users[u].contacts.push(v);
                users[v].contacts.push(u);
                edges.push((u.min(v), u.max(v)));
            }
        }
        let (glo, ghi) = shape.group_size;
        let mut groups = Vec::new();
        for g in 0..shape.groups {
            let size = rng.between(glo, ghi).min(n);
            let mut members: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut members);
            members.truncate(size);
            for &m in &members {
                users[m].groups.push(g);
            }
            groups.push(members);
        }
        Self {
            users,
            edges,
            groups,
        }
    }

    /// One profile per user, with every contact's and group's keys, behaving as
    /// `behaviour`, each from its own stream of `rng`.
    pub fn profiles(
        &self,
        pins: &[RelayAddr],
        behaviour: Behaviour,
        rng: &mut Rng,
    ) -> Vec<Profile> {
        let mut profiles: Vec<Profile> = self
            .users
            .iter()
            .map(|u| Profile::new(u.card.clone(), pins.to_vec(), behaviour, rng.fork()))
            .collect();
        // One tag key per direction of each edge.
        let mut keys: std::collections::HashMap<(usize, usize), TagKey> =
            std::collections::HashMap::new();
        for &(a, b) in &self.edges {
            keys.insert((a, b), TagKey::generate());
            keys.insert((b, a), TagKey::generate());
        }
        for (u, user) in self.users.iter().enumerate() {
            for &v in &user.contacts {
                let (send, receive) = match (keys.get(&(u, v)), keys.get(&(v, u))) {
                    (Some(s), Some(r)) => (s.clone(), r.clone()),
                    _ => continue,
                };
                profiles[u].add_contact(self.users[v].card.clone(), send, receive);
            }
        }
        for (g, members) in self.groups.iter().enumerate() {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(g as u64).to_be_bytes());
            id[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
            let mut secret = [0u8; 32];
            for chunk in secret.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
            }
            let Ok(key) = GroupTagKey::derive(&GroupId::from_bytes(id), &secret, 0) else {
                continue;
            };
            let cards: Vec<(Card, TagKey)> = members
                .iter()
                .map(|&m| (self.users[m].card.clone(), TagKey::generate()))
                .collect();
            for (place, &m) in members.iter().enumerate() {
                profiles[m].add_group(&cards, place, key.clone());
            }
        }
        profiles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::CertFingerprint;

    fn relay(b: u8) -> RelayAddr {
        RelayAddr {
            host: "127.0.0.1".to_owned(),
            port: u16::from(b),
            fingerprint: CertFingerprint([b; 32]),
        }
    }

    #[test]
    fn the_world_has_the_shape_asked_for_and_a_seed_replays_it() {
        let topology = Topology {
            lanes: vec![(relay(1), relay(2)), (relay(1), relay(3))],
        };
        let shape = Shape {
            users: 500,
            contacts: (2, 10),
            groups: 30,
            group_size: (3, 20),
        };
        let w = World::generate(shape, &topology, &mut Rng::seeded(5));
        let again = World::generate(shape, &topology, &mut Rng::seeded(5));
        assert_eq!(w.edges, again.edges);
        assert_eq!(w.groups, again.groups);
        for (u, user) in w.users.iter().enumerate() {
            assert!((2..=10).contains(&user.contacts.len()), "user {u}");
            assert!(!user.contacts.contains(&u));
            for &v in &user.contacts {
                assert!(w.users[v].contacts.contains(&u), "contacts are mutual");
            }
            assert_eq!(
                user.card.home.fingerprint,
                topology.lanes[user.lane].1.fingerprint
            );
        }
        let mut edges = w.edges.clone();
        edges.sort_unstable();
        edges.dedup();
        assert_eq!(edges.len(), w.edges.len(), "no edge twice");
        assert_eq!(w.groups.len(), 30);
        assert!(w.groups.iter().all(|g| (3..=20).contains(&g.len())));
        // Degrees are spread over the range, not piled at one end.
        let low = w.users.iter().filter(|u| u.contacts.len() <= 4).count();
        let high = w.users.iter().filter(|u| u.contacts.len() >= 8).count();
        assert!(low > 50 && high > 50, "{low} {high}");
        // Lanes alternate: both home relays hold half the users.
        assert_eq!(w.users.iter().filter(|u| u.lane == 0).count(), 250);
    }

    #[test]
    fn profiles_know_their_contacts_and_groups_in_the_worlds_order() {
        let topology = Topology {
            lanes: vec![(relay(1), relay(1))],
        };
        let shape = Shape {
            users: 20,
            contacts: (2, 4),
            groups: 3,
            group_size: (3, 5),
        };
        let mut rng = Rng::seeded(9);
        let w = World::generate(shape, &topology, &mut rng);
        let p = w.profiles(&topology.homes(), Behaviour::default(), &mut rng);
        for (u, user) in w.users.iter().enumerate() {
            let members: usize = user.groups.iter().map(|&g| w.groups[g].len()).sum();
            assert_eq!(p[u].senders(), user.contacts.len() + members);
            assert_eq!(
                p[u].card().secret.expose_secret(),
                user.card.secret.expose_secret()
            );
        }
    }
}

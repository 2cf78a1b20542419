//! The mailboxes the core reads: where each one is, what its envelopes are for, and which
//! have drained and can go.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hum_shared::RelayAddr;
use hum_shared::crypto::{Capability, MailboxId};

/// How long a subscription to an old epoch's mailbox stays, to fetch what it holds.
pub(super) const DRAIN_TIME: Duration = Duration::from_secs(60);

/// Where a mailbox's envelopes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteKind {
    /// Answers to one of our invites.
    Invite(i64),
    /// Answers to one of our invites that was used already.
    UsedInvite(i64),
    /// The used notice of an invite we accepted, for that contact.
    InviteCheck(i64),
    /// A 1:1 session with a contact.
    Direct(i64),
    /// A group room.
    Group(i64),
}

/// One mailbox the core reads.
pub(super) struct Route {
    /// The relay that holds it.
    pub(super) relay: RelayAddr,
    /// What reading it takes.
    pub(super) cap: Capability,
    /// What its envelopes are for.
    pub(super) kind: RouteKind,
    /// Whether the relay fans it out (a group's), with a cursor.
    pub(super) fanout: bool,
    /// The epoch of a session or group mailbox (none for an invite's).
    pub(super) epoch: Option<u64>,
    /// When it was subscribed.
    pub(super) since: Instant,
}

/// Every mailbox the core reads, by id.
#[derive(Default)]
pub(super) struct Subscriptions {
    routes: HashMap<MailboxId, Route>,
}

impl Subscriptions {
    /// Whether `id` is read already.
    pub(super) fn contains(&self, id: &MailboxId) -> bool {
        self.routes.contains_key(id)
    }

    /// Reads `route` from now on.
    pub(super) fn add(&mut self, route: Route) {
        self.routes.insert(route.cap.mailbox_id(), route);
    }

    /// The route of mailbox `id`.
    pub(super) fn get(&self, id: &MailboxId) -> Option<&Route> {
        self.routes.get(id)
    }

    /// Stops reading `id`.
    pub(super) fn remove(&mut self, id: &MailboxId) -> Option<Route> {
        self.routes.remove(id)
    }

    /// The routes held by `relay`.
    pub(super) fn on_relay<'a>(&'a self, relay: &'a RelayAddr) -> impl Iterator<Item = &'a Route> {
        self.routes.values().filter(move |r| r.relay == *relay)
    }

    /// Stops reading the mailboxes of epochs before the one before `epoch` that were read
    /// for at least [`DRAIN_TIME`] by `now`: senders always deposit into the current
    /// epoch's mailbox, so only what was deposited before we subscribed can be in an old
    /// one. Returns them.
    pub(super) fn drop_drained(&mut self, epoch: u64, now: Instant) -> Vec<Route> {
        let cutoff = epoch.saturating_sub(1);
        let old: Vec<MailboxId> = self
            .routes
            .iter()
            .filter(|(_, r)| {
                r.epoch.is_some_and(|e| e < cutoff)
                    && now.saturating_duration_since(r.since) > DRAIN_TIME
            })
            .map(|(id, _)| *id)
            .collect();
        old.iter().filter_map(|id| self.routes.remove(id)).collect()
    }

    /// Stops reading every mailbox of `kind`; returns them.
    pub(super) fn remove_kind(&mut self, kind: RouteKind) -> Vec<Route> {
        let gone: Vec<MailboxId> = self
            .routes
            .iter()
            .filter(|(_, r)| r.kind == kind)
            .map(|(id, _)| *id)
            .collect();
        gone.iter()
            .filter_map(|id| self.routes.remove(id))
            .collect()
    }

    /// The mailboxes of `from` are now for `to`.
    pub(super) fn rekind(&mut self, from: RouteKind, to: RouteKind) {
        for r in self.routes.values_mut().filter(|r| r.kind == from) {
            r.kind = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use hum_shared::crypto::Identity;

    use super::*;

    fn relay() -> RelayAddr {
        RelayAddr {
            host: "relay.test".into(),
            port: 1,
            fingerprint: hum_shared::CertFingerprint([1; 32]),
        }
    }

    /// A route of a session's mailbox of `epoch`, subscribed at `since`.
    fn route(
        epoch: Option<u64>,
        kind: RouteKind,
        since: Instant,
    ) -> Result<Route, Box<dyn std::error::Error>> {
        let (_, secret) = Identity::generate().create_invite(&relay().to_string(), 60, 1)?;
        Ok(Route {
            relay: relay(),
            cap: secret.capability().clone(),
            kind,
            fanout: false,
            epoch,
            since,
        })
    }

    #[test]
    fn old_epochs_go_once_drained_and_the_last_two_stay() -> Result<(), Box<dyn std::error::Error>>
    {
        let t0 = Instant::now();
        let mut subs = Subscriptions::default();
        let mut ids = Vec::new();
        for e in [7, 8, 9, 10] {
            let r = route(Some(e), RouteKind::Direct(1), t0)?;
            ids.push(r.cap.mailbox_id());
            subs.add(r);
        }
        let invite = route(None, RouteKind::Invite(1), t0)?;
        let invite_id = invite.cap.mailbox_id();
        subs.add(invite);
        assert!(
            subs.drop_drained(10, t0 + DRAIN_TIME).is_empty(),
            "not drained yet"
        );
        let gone: Vec<Option<u64>> = subs
            .drop_drained(10, t0 + DRAIN_TIME + Duration::from_secs(1))
            .iter()
            .map(|r| r.epoch)
            .collect();
        assert_eq!(gone.len(), 2);
        assert!(gone.contains(&Some(7)) && gone.contains(&Some(8)));
        assert!(subs.contains(&ids[2]) && subs.contains(&ids[3]));
        assert!(
            subs.contains(&invite_id),
            "an invite's mailbox has no epoch"
        );
        Ok(())
    }

    #[test]
    fn mailboxes_change_kind_and_go_by_kind() -> Result<(), Box<dyn std::error::Error>> {
        let t0 = Instant::now();
        let mut subs = Subscriptions::default();
        subs.add(route(None, RouteKind::Invite(3), t0)?);
        subs.add(route(Some(1), RouteKind::Direct(3), t0)?);
        subs.rekind(RouteKind::Invite(3), RouteKind::UsedInvite(4));
        assert!(subs.remove_kind(RouteKind::Invite(3)).is_empty());
        assert_eq!(subs.remove_kind(RouteKind::UsedInvite(4)).len(), 1);
        assert_eq!(subs.on_relay(&relay()).count(), 1);
        Ok(())
    }
}

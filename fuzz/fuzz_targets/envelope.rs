//! Opens arbitrary bytes as an envelope: in a 1:1 session, in a group, and as a handshake
//! answer. Nothing may panic; whatever parses as an envelope re-encodes to the same bytes.
#![no_main]

use std::sync::OnceLock;

use hum_shared::crypto::{Envelope, GroupState, Identity, InviteSecret, Session};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    alice: Identity,
    secret: InviteSecret,
    session: Session,
    group: GroupState,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let alice = Identity::generate();
        let bob = Identity::generate();
        let (invite, secret) = alice
            .create_invite("hum://127.0.0.1:7447#00", 3600, 0)
            .expect("a short relay address always fits");
        let (session, _) =
            Session::initiate(&bob, &invite, b"hi").expect("a short first message fits");
        let creator = GroupState::create();
        let group = GroupState::from_distribution(&creator.distribution())
            .expect("a fresh distribution is valid");
        Fixture {
            alice,
            secret,
            session,
            group,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_bytes(data) else {
        return;
    };
    assert_eq!(&envelope.as_bytes()[..], data);
    let f = fixture();
    let mut session = f.session.clone();
    let before = session.to_bytes();
    if session.open(&envelope).is_err() {
        assert_eq!(*before, *session.to_bytes(), "failed open changed the session");
    }
    let mut group = f.group.clone();
    let _ = group.open(&envelope);
    let _ = Session::respond(&f.alice, &f.secret, &envelope);
});

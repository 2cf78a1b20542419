//! Decodes arbitrary text as an invite code, and arbitrary bytes as an invite's payload
//! behind a valid prefix and checksum (so the layout parser, the identity and prekey
//! checks and the signature check see them), and fuzzer-chosen fields (relays, delivery
//! secret, nickname) signed by a
//! fixture identity, with a byte of the code changed or not. Nothing may panic; whatever
//! decodes re-encodes to a code that decodes to the same invite.
#![no_main]

use std::sync::OnceLock;

use hum_shared::crypto::{Identity, Invite, InviteHome};
use hum_shared::route::DeliverySecret;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Text as pasted.
    Text(&'a str),
    /// An invite's payload, wrapped in a valid code.
    Payload(&'a [u8]),
    /// A real invite with the fuzzer's fields, its code changed at one character or not.
    Signed {
        relay: &'a str,
        entry: Option<&'a str>,
        delivery: [u8; 32],
        nickname: Option<&'a str>,
        ttl: u64,
        now: u64,
        edit: Option<(u16, char)>,
    },
}

fn inviter() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(Identity::generate)
}

fn check(code: &str, now: u64) {
    if let Ok(invite) = Invite::decode(code, now) {
        let again = Invite::decode(&invite.encode(), now).expect("re-encoded invite decodes");
        assert_eq!(again, invite);
    }
}

fuzz_target!(|input: Input<'_>| {
    match input {
        Input::Text(text) => {
            check(text, 0);
            check(&format!("hum2-{text}"), 0);
            check(&format!("hum1-{text}"), 0);
        }
        Input::Payload(payload) => check(&Invite::fuzz_code(payload), 0),
        Input::Signed {
            relay,
            entry,
            delivery,
            nickname,
            ttl,
            now,
            edit,
        } => {
            let delivery = DeliverySecret::from_bytes(delivery);
            let home = InviteHome {
                relay,
                entry,
                delivery: &delivery,
            };
            let Ok((invite, _)) = inviter().create_invite_with(&home, nickname, ttl, now) else {
                return;
            };
            let code = invite.encode();
            let Some((at, c)) = edit else {
                if now < invite.expires_at() {
                    assert_eq!(Invite::decode(&code, now).ok(), Some(invite));
                }
                return;
            };
            let mut chars: Vec<char> = code.chars().collect();
            let i = usize::from(at) % chars.len();
            let changed = chars[i] != c;
            chars[i] = c;
            let edited: String = chars.into_iter().collect();
            if let Ok(decoded) = Invite::decode(&edited, now) {
                // Only an edit the alphabet folds back (case, o/0, i/l/1) or spacing keeps
                // the same invite; anything else is caught by the checksum or signature.
                assert!(
                    !changed || decoded == invite,
                    "an edited code decoded to another invite"
                );
            }
        }
    }
});

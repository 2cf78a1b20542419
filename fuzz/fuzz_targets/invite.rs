//! Decodes arbitrary text as an invite code. Nothing may panic; whatever decodes re-encodes
//! to a code that decodes to the same invite.
#![no_main]

use hum_shared::crypto::Invite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Also try the body alone behind a valid prefix, so the fuzzer reaches the parser.
    for code in [text.to_owned(), format!("hum1-{text}")] {
        if let Ok(invite) = Invite::decode(&code, 0) {
            let again = Invite::decode(&invite.encode(), 0).expect("re-encoded invite decodes");
            assert_eq!(again, invite);
        }
    }
});

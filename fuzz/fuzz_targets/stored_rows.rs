//! Decodes arbitrary bytes as every kind of row the client's store holds (contacts, rooms
//! with their group state, message bodies, inbox entries, sessions, group states, invite
//! secrets, the identity, the key slot). Nothing may panic; whatever decodes re-encodes to
//! bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hum::engine::fuzzing::stored_rows(data);
});

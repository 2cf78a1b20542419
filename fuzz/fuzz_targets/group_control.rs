//! Decodes arbitrary bytes as a peer's application message, as the engine does before it
//! acts on one, then what group control carries: sender-key distributions, member
//! identities, endorsements, and the distribution applied to a group state. Nothing may
//! panic; whatever decodes re-encodes to the same value; a refused key changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hum::engine::fuzzing::group_control(data);
});

//! Decodes arbitrary bytes as every record an opened row of the client's store holds
//! (schema 2: one sealed record per row of every table; the meta table's identity and key
//! slot; schema 1's rows as their migration reads them). Nothing may panic; whatever
//! decodes re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hum::engine::fuzzing::stored_rows(data);
});

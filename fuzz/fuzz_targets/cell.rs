//! Decodes arbitrary bytes as a cell in both directions, and feeds them to the part
//! reassembler. Nothing may panic; every cell that decodes re-encodes to a cell that
//! decodes to the same operations.
#![no_main]

use hum_shared::{CellWriter, DEFAULT_CELL_SIZE, Down, Reassembler, Up, decode_cell};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(ops) = decode_cell::<T>(data, DEFAULT_CELL_SIZE) else {
        return;
    };
    let mut w = CellWriter::new(DEFAULT_CELL_SIZE).expect("the default cell size is valid");
    for op in &ops {
        w.push(op).expect("what fitted once fits again");
    }
    let again = decode_cell::<T>(&w.finish(), DEFAULT_CELL_SIZE).expect("a written cell decodes");
    assert_eq!(again, ops);
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary input padded or cut to one cell, so the fuzzer reaches the records.
    let mut cell = data.to_vec();
    cell.resize(DEFAULT_CELL_SIZE, 0);
    round_trip::<Up>(&cell);
    round_trip::<Down>(&cell);
    let _ = decode_cell::<Up>(data, DEFAULT_CELL_SIZE);
    let mut r = Reassembler::new(64, 4096, 8, 1 << 16);
    for part in data.chunks(64) {
        let _ = r.insert(part);
        assert!(r.held_bytes() <= 4096);
    }
});

//! Property tests of the cell and split layers: every encode/decode and split/join pair.

use hum_shared::{
    Capability, CellWriter, DEFAULT_CELL_SIZE, Down, ENVELOPE_LEN, MailboxId, Reassembler,
    SplitError, Up, decode_cell, split,
};
use proptest::prelude::*;

fn mailbox() -> impl Strategy<Value = MailboxId> {
    any::<[u8; 32]>().prop_map(MailboxId::from_bytes)
}

fn envelope() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), ENVELOPE_LEN)
}

fn up() -> impl Strategy<Value = Up> {
    prop_oneof![
        (any::<u32>(), mailbox(), any::<bool>(), envelope()).prop_map(
            |(tag, mailbox, fanout, envelope)| Up::Deposit {
                tag,
                mailbox,
                fanout,
                envelope
            }
        ),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(c, after)| Up::Subscribe {
            capability: Capability::from_bytes(c),
            after
        }),
        mailbox().prop_map(|mailbox| Up::Unsubscribe { mailbox }),
        (mailbox(), any::<u64>()).prop_map(|(mailbox, seq)| Up::Ack { mailbox, seq }),
    ]
}

fn down() -> impl Strategy<Value = Down> {
    prop_oneof![
        (mailbox(), any::<u64>(), envelope()).prop_map(|(mailbox, seq, envelope)| {
            Down::Deliver {
                mailbox,
                seq,
                envelope,
            }
        }),
        any::<u32>().prop_map(|tag| Down::Stored { tag }),
        any::<u32>().prop_map(|tag| Down::Full { tag }),
        mailbox().prop_map(|mailbox| Down::Subscribed { mailbox }),
    ]
}

/// Pushes as many of `ops` as fit, returning those that went in.
fn fill<T: serde::Serialize + Clone>(w: &mut CellWriter, ops: &[T]) -> Vec<T> {
    let mut kept = Vec::new();
    for op in ops {
        if w.fits(op) && w.push(op).is_ok() {
            kept.push(op.clone());
        }
    }
    kept
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn up_cells_round_trip_at_exactly_the_cell_size(
        ops in proptest::collection::vec(up(), 0..12),
        size in prop_oneof![Just(DEFAULT_CELL_SIZE), 1024usize..4096],
    ) {
        let mut w = CellWriter::new(size)?;
        let kept = fill(&mut w, &ops);
        let cell = w.finish();
        prop_assert_eq!(cell.len(), size);
        prop_assert_eq!(decode_cell::<Up>(&cell, size)?, kept);
    }

    #[test]
    fn down_cells_round_trip_at_exactly_the_cell_size(
        ops in proptest::collection::vec(down(), 0..12),
    ) {
        let mut w = CellWriter::new(DEFAULT_CELL_SIZE)?;
        let kept = fill(&mut w, &ops);
        let cell = w.finish();
        prop_assert_eq!(cell.len(), DEFAULT_CELL_SIZE);
        prop_assert_eq!(decode_cell::<Down>(&cell, DEFAULT_CELL_SIZE)?, kept);
    }

    #[test]
    fn one_envelope_always_fits_an_empty_cell(op in prop_oneof![up(), down().prop_map(|d| match d {
        Down::Deliver { mailbox, seq, envelope } => Up::Deposit { tag: u32::MAX, mailbox, fanout: seq % 2 == 0, envelope },
        _ => Up::Ack { mailbox: MailboxId::from_bytes([0; 32]), seq: u64::MAX },
    })]) {
        let w = CellWriter::new(DEFAULT_CELL_SIZE)?;
        prop_assert!(w.fits(&op));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
        let _ = decode_cell::<Up>(&bytes, DEFAULT_CELL_SIZE);
        let _ = decode_cell::<Down>(&bytes, DEFAULT_CELL_SIZE);
    }

    #[test]
    fn arbitrary_cell_bodies_never_panic_the_decoder(body in proptest::collection::vec(any::<u8>(), DEFAULT_CELL_SIZE - 1)) {
        let mut cell = vec![hum_shared::CELL_VERSION];
        cell.extend_from_slice(&body);
        let _ = decode_cell::<Up>(&cell, DEFAULT_CELL_SIZE);
        let _ = decode_cell::<Down>(&cell, DEFAULT_CELL_SIZE);
    }

    #[test]
    fn mutated_cells_never_panic_and_reencode_what_decodes(
        ops in proptest::collection::vec(up(), 1..4),
        flips in proptest::collection::vec((0usize..DEFAULT_CELL_SIZE, any::<u8>()), 1..8),
    ) {
        let mut w = CellWriter::new(DEFAULT_CELL_SIZE)?;
        fill(&mut w, &ops);
        let mut cell = w.finish();
        for (i, b) in flips {
            cell[i] = b;
        }
        if let Ok(decoded) = decode_cell::<Up>(&cell, DEFAULT_CELL_SIZE) {
            let mut again = CellWriter::new(DEFAULT_CELL_SIZE)?;
            for op in &decoded {
                again.push(op)?;
            }
            prop_assert_eq!(decode_cell::<Up>(&again.finish(), DEFAULT_CELL_SIZE)?, decoded);
        }
    }

    #[test]
    fn split_shuffle_reassemble_gives_the_original(
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
        part_size in 40usize..900,
        seed in any::<u64>(),
        id in any::<u64>(),
    ) {
        let mut parts = split(id, &payload, part_size)?;
        prop_assert!(parts.iter().all(|p| p.len() == part_size));
        // Fisher-Yates with a small deterministic generator.
        let mut s = seed | 1;
        for i in (1..parts.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            let j = usize::try_from(s % (i as u64 + 1)).unwrap_or(0);
            parts.swap(i, j);
        }
        let mut re = Reassembler::new(part_size, 1 << 20, 4, 1 << 20);
        let mut done = None;
        let n = parts.len();
        for (k, p) in parts.iter().enumerate() {
            let got = re.insert(p)?;
            if k + 1 < n {
                prop_assert_eq!(got, None);
            } else {
                done = got;
            }
        }
        prop_assert_eq!(done, Some((id, payload)));
        prop_assert_eq!(re.held_bytes(), 0);
    }

    #[test]
    fn a_missing_part_never_completes_and_a_duplicate_is_reported(
        payload in proptest::collection::vec(any::<u8>(), 100..3000),
        drop in any::<prop::sample::Index>(),
    ) {
        let parts = split(7, &payload, 64)?;
        let missing = drop.index(parts.len());
        let mut re = Reassembler::new(64, 1 << 20, 4, 1 << 20);
        for (i, p) in parts.iter().enumerate() {
            if i != missing {
                prop_assert_eq!(re.insert(p)?, None);
            }
        }
        let dup = (missing + 1) % parts.len();
        let dup_index = u16::try_from(dup).unwrap_or(u16::MAX);
        prop_assert_eq!(re.insert(&parts[dup]), Err(SplitError::Duplicate { index: dup_index }));
        prop_assert_eq!(re.missing().len(), 1);
        prop_assert!(re.insert(&parts[missing])?.is_some());
    }

    #[test]
    fn arbitrary_parts_never_panic_and_stay_bounded(
        parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 64), 0..64),
    ) {
        let mut re = Reassembler::new(64, 512, 3, 4096);
        for p in &parts {
            let _ = re.insert(p);
            prop_assert!(re.held_bytes() <= 512);
            prop_assert!(re.pending() <= 3);
        }
    }
}

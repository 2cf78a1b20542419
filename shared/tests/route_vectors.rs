//! Known-answer vectors of hum/2's derivations and sealed formats, read from
//! `tests/vectors/route.txt` (blocks of `key = hex` lines; docs/PROTOCOL.md, hum/2 §H3).
//!
//! The inputs come from fixed byte patterns. The sealed cases (a slot, a forwarded
//! deposit) were made once with random ephemerals; the test opens them with the fixed slot
//! secrets and re-derives every answer and reply item, which are deterministic given the
//! slot. `cargo test -p hum-shared --test route_vectors -- --ignored --nocapture
//! print_vectors` prints a fresh file.

use std::collections::HashMap;

use hum_shared::CertFingerprint;
use hum_shared::crypto::{ENVELOPE_LEN, GroupId, MemberId};
use hum_shared::route::{
    CatchUp, Copy, DeliverySecret, Deposit, DepositOutcome, DepositReply, DetectionKey,
    GroupTagKey, Item, OpenedDeposit, RelayId, Request, RequestOutcome, Slot, SlotDeposit,
    SlotKeyPair, SlotKeyring, TagKey, TagSecret, WRAPPED_LEN, WrapKey, WrappedEnvelope, open_inner,
    open_slot, seal_slot,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Case = HashMap<String, String>;

fn cases() -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let path = format!("{}/tests/vectors/route.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let mut current = Case::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(format!("bad line {line:?}"))?;
        current.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

fn get<'a>(case: &'a Case, key: &str) -> Result<&'a str, String> {
    case.get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("missing {key}"))
}

fn hex(case: &Case, key: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let s = get(case, key)?;
    if s.len() % 2 != 0 {
        return Err(format!("odd hex in {key}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

fn arr<const N: usize>(case: &Case, key: &str) -> Result<[u8; N], Box<dyn std::error::Error>> {
    Ok(<[u8; N]>::try_from(hex(case, key)?.as_slice())?)
}

fn num<T: std::str::FromStr>(case: &Case, key: &str) -> Result<T, Box<dyn std::error::Error>>
where
    T::Err: std::error::Error + 'static,
{
    Ok(get(case, key)?.parse()?)
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The fixed input pattern `n`: bytes `n, n+1, n+2, ...`.
fn pattern<const N: usize>(n: u8) -> [u8; N] {
    std::array::from_fn(|i| n.wrapping_add(i as u8))
}

fn wrapped(n: u8) -> Result<WrappedEnvelope, Box<dyn std::error::Error>> {
    Ok(WrappedEnvelope::from_bytes(&pattern::<WRAPPED_LEN>(n))?)
}

fn member(bytes: [u8; 32]) -> Result<MemberId, Box<dyn std::error::Error>> {
    Ok(postcard::from_bytes(&bytes)?)
}

fn copies_text(copies: &[Copy]) -> String {
    copies
        .iter()
        .map(|c| format!("{}:{}", c.bucket, c.flag))
        .collect::<Vec<_>>()
        .join(",")
}

const ENTRY: RelayId = RelayId::from_bytes([0xe1; 8]);
const HOME: RelayId = RelayId::from_bytes([0x4a; 8]);
const DEST: RelayId = RelayId::from_bytes([0xd3; 8]);

fn ring(secret: [u8; 32], epoch: u32) -> SlotKeyring {
    let mut r = SlotKeyring::new();
    r.insert(SlotKeyPair::from_secret_bytes(epoch, secret));
    r
}

/// The answer and reply item a relay seals for a slot, from the fixed outcomes of the
/// vectors.
fn replies(
    replier: hum_shared::route::SlotReplier,
    deposit: &DepositReply,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let item = Item::from_bytes(&pattern::<{ hum_shared::route::ITEM_LEN }>(0x90))?;
    let reply = replier.seal(
        deposit,
        &RequestOutcome::CatchUp {
            found: true,
            next_after: 5,
            more: false,
        },
        Some(&item),
    );
    Ok((to_hex(&reply.answer), to_hex(reply.item.as_bytes())))
}

#[test]
fn derivations_match_the_vectors() -> TestResult {
    let mut seen = HashMap::<String, usize>::new();
    for case in cases()? {
        let name = get(&case, "name")?.to_owned();
        *seen
            .entry(name.split('-').next().unwrap_or("").to_owned())
            .or_default() += 1;
        match get(&case, "kind")? {
            "relay-id" => {
                let id = RelayId::of_fingerprint(&CertFingerprint(arr(&case, "fingerprint")?));
                assert_eq!(to_hex(id.as_bytes()), get(&case, "relay_id")?, "{name}");
            }
            "delivery" => {
                let ds = DeliverySecret::from_bytes(arr(&case, "ds")?);
                let e: u32 = num(&case, "epoch")?;
                let buckets: u16 = num(&case, "buckets")?;
                assert_eq!(
                    ds.bucket(e, buckets)?,
                    num::<u16>(&case, "bucket")?,
                    "{name}"
                );
                let wk = ds.wrap_key(e);
                assert_eq!(to_hex(wk.expose_secret()), get(&case, "wrap_key")?);
                let dk = ds.detection_key(e);
                assert_eq!(to_hex(dk.expose_secret()), get(&case, "detection_key")?);
                let lk = ds.loop_tag_key();
                assert_eq!(to_hex(lk.expose_secret()), get(&case, "loop_tag_key")?);
            }
            "tag" => {
                let tk = TagKey::from_bytes(arr(&case, "tk")?);
                let secret = tk.secret(num(&case, "epoch")?, num(&case, "counter")?);
                check_tag(&case, &name, &secret)?;
            }
            "group-tag" => {
                let g = GroupTagKey::derive(
                    &GroupId::from_bytes(arr(&case, "group_id")?),
                    &arr(&case, "group_secret")?,
                    num(&case, "generation")?,
                )?;
                let e: u32 = num(&case, "epoch")?;
                let secret = g.secret(&member(arr(&case, "member")?)?, e, num(&case, "counter")?);
                assert_eq!(
                    to_hex(g.wrap_key(e).expose_secret()),
                    get(&case, "group_wrap_key")?
                );
                check_tag(&case, &name, &secret)?;
            }
            "wrap" => {
                let wk = WrapKey::from_bytes(arr(&case, "wrap_key")?);
                let p = WrappedEnvelope::from_bytes(&hex(&case, "wrapped")?)?;
                assert_eq!(to_hex(wk.unwrap(&p).as_bytes()), get(&case, "envelope")?);
            }
            "slot-local" => {
                let home = ring(arr(&case, "home_secret")?, num(&case, "home_epoch")?);
                let slot = Slot::from_bytes(&hex(&case, "slot")?)?;
                let opened = open_slot(&home, ENTRY, num(&case, "tick")?, &slot)?;
                let OpenedDeposit::Local(d) = &opened.deposit else {
                    return Err(format!("{name}: not a local deposit").into());
                };
                check_deposit(&case, d)?;
                let Request::CatchUp(c) = &opened.request else {
                    return Err(format!("{name}: not a catch-up").into());
                };
                assert_eq!(to_hex(c.detect.expose_secret()), get(&case, "detect")?);
                assert_eq!(c.after, num::<u64>(&case, "after")?);
                let (answer, item) = replies(
                    opened.replier,
                    &DepositReply::Outcome(DepositOutcome::Stored),
                )?;
                assert_eq!(answer, get(&case, "answer")?, "{name}");
                assert_eq!(item, get(&case, "reply_item")?, "{name}");
            }
            "slot-forward" => {
                let home = ring(arr(&case, "home_secret")?, num(&case, "home_epoch")?);
                let dest = ring(arr(&case, "dest_secret")?, num(&case, "dest_epoch")?);
                let slot = Slot::from_bytes(&hex(&case, "slot")?)?;
                let opened = open_slot(&home, ENTRY, num(&case, "tick")?, &slot)?;
                let OpenedDeposit::Forward { dest: to, blob } = &opened.deposit else {
                    return Err(format!("{name}: not a forward").into());
                };
                assert_eq!(*to, DEST);
                assert_eq!(to_hex(blob.as_bytes()), get(&case, "inner_blob")?);
                let inner = open_inner(&dest, HOME, blob)?;
                check_deposit(&case, &inner.deposit)?;
                let inner_answer = inner.replier.seal(DepositOutcome::Retry {
                    epoch: num(&case, "retry_epoch")?,
                });
                assert_eq!(to_hex(inner_answer.as_bytes()), get(&case, "inner_answer")?);
                let (answer, item) =
                    replies(opened.replier, &DepositReply::Forwarded(inner_answer))?;
                assert_eq!(answer, get(&case, "answer")?, "{name}");
                assert_eq!(item, get(&case, "reply_item")?, "{name}");
            }
            other => return Err(format!("unknown kind {other}").into()),
        }
    }
    for kind in ["relay", "delivery", "tag", "group", "wrap", "slot"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 1,
            "no {kind} vector"
        );
    }
    Ok(())
}

fn check_tag(case: &Case, name: &str, secret: &TagSecret) -> TestResult {
    assert_eq!(
        to_hex(secret.expose_secret()),
        get(case, "tag_secret")?,
        "{name}"
    );
    let seed = secret.seed();
    assert_eq!(to_hex(seed.as_bytes()), get(case, "seed")?, "{name}");
    let b: u16 = num(case, "bucket")?;
    let tag = seed.copy_tag(b);
    assert_eq!(to_hex(tag.as_bytes()), get(case, "copy_tag")?, "{name}");
    let dk = DetectionKey::from_bytes(arr(case, "detection_key")?);
    assert_eq!(dk.flag(&tag), num::<u8>(case, "flag")?, "{name}");
    let item = Item::rewrap(&seed, b, &wrapped(num(case, "payload_pattern")?)?);
    assert_eq!(to_hex(item.as_bytes()), get(case, "item")?, "{name}");
    Ok(())
}

fn check_deposit(case: &Case, d: &Deposit) -> TestResult {
    assert_eq!(d.epoch(), num::<u32>(case, "deposit_epoch")?);
    assert_eq!(copies_text(d.copies()), get(case, "copies")?);
    assert_eq!(to_hex(d.seed().as_bytes()), get(case, "seed")?);
    assert_eq!(
        d.payload(),
        &wrapped(num(case, "payload_pattern")?)?,
        "payload"
    );
    Ok(())
}

/// Prints a fresh vector file (the sealed cases get new random ephemerals).
#[test]
#[ignore = "prints tests/vectors/route.txt"]
fn print_vectors() -> TestResult {
    println!("# hum/2 derivations and sealed formats (docs/PROTOCOL.md, hum/2 §H3-H4).");
    println!("# Inputs are byte patterns: pattern(n) is n, n+1, n+2, ... (mod 256).\n");
    for (i, fp) in [[0u8; 32], pattern(0x20)].iter().enumerate() {
        let id = RelayId::of_fingerprint(&CertFingerprint(*fp));
        println!("name = relay-id-{i}\nkind = relay-id");
        println!(
            "fingerprint = {}\nrelay_id = {}\n",
            to_hex(fp),
            to_hex(id.as_bytes())
        );
    }
    for (i, (e, buckets)) in [(0u32, 64u16), (473_000, 256), (7, 37)].iter().enumerate() {
        let ds = DeliverySecret::from_bytes(pattern(0x40 + i as u8));
        println!("name = delivery-{i}\nkind = delivery");
        println!(
            "ds = {}\nepoch = {e}\nbuckets = {buckets}",
            to_hex(ds.expose_secret())
        );
        println!("bucket = {}", ds.bucket(*e, *buckets)?);
        println!("wrap_key = {}", to_hex(ds.wrap_key(*e).expose_secret()));
        println!(
            "detection_key = {}",
            to_hex(ds.detection_key(*e).expose_secret())
        );
        println!(
            "loop_tag_key = {}\n",
            to_hex(ds.loop_tag_key().expose_secret())
        );
    }
    let print_tag = |secret: &TagSecret, bucket: u16, payload: u8| -> TestResult {
        let seed = secret.seed();
        let tag = seed.copy_tag(bucket);
        let dk = DetectionKey::from_bytes(pattern(0x77));
        println!("tag_secret = {}", to_hex(secret.expose_secret()));
        println!("seed = {}\nbucket = {bucket}", to_hex(seed.as_bytes()));
        println!("copy_tag = {}", to_hex(tag.as_bytes()));
        println!("detection_key = {}", to_hex(dk.expose_secret()));
        println!("flag = {}\npayload_pattern = {payload}", dk.flag(&tag));
        let item = Item::rewrap(&seed, bucket, &wrapped(payload)?);
        println!("item = {}\n", to_hex(item.as_bytes()));
        Ok(())
    };
    for (i, (e, n, b)) in [(0u32, 0u64, 0u16), (473_000, 63, 255)].iter().enumerate() {
        let tk = TagKey::from_bytes(pattern(0x60 + i as u8));
        println!("name = tag-{i}\nkind = tag");
        println!(
            "tk = {}\nepoch = {e}\ncounter = {n}",
            to_hex(tk.expose_secret())
        );
        print_tag(&tk.secret(*e, *n), *b, 0x11)?;
    }
    let gid = GroupId::from_bytes(pattern(0xa0));
    let gs: [u8; 32] = pattern(0xb0);
    let m: [u8; 32] = pattern(0xc0);
    let g = GroupTagKey::derive(&gid, &gs, 3)?;
    println!("name = group-tag-0\nkind = group-tag");
    println!(
        "group_id = {}\ngroup_secret = {}",
        to_hex(gid.as_bytes()),
        to_hex(&gs)
    );
    println!(
        "generation = 3\nmember = {}\nepoch = 12\ncounter = 2",
        to_hex(&m)
    );
    println!(
        "group_wrap_key = {}",
        to_hex(g.wrap_key(12).expose_secret())
    );
    print_tag(&g.secret(&member(m)?, 12, 2), 17, 0x22)?;
    let wk = WrapKey::from_bytes(pattern(0x33));
    let p = wrapped(0x44)?;
    println!(
        "name = wrap-0\nkind = wrap\nwrap_key = {}",
        to_hex(wk.expose_secret())
    );
    println!("wrapped = {}", to_hex(p.as_bytes()));
    println!("envelope = {}\n", to_hex(wk.unwrap(&p).as_bytes()));
    debug_assert_eq!(wk.unwrap(&p).as_bytes().len(), ENVELOPE_LEN);

    // Sealed cases.
    let home_secret: [u8; 32] = pattern(0x01);
    let dest_secret: [u8; 32] = pattern(0x02);
    let home = ring(home_secret, 300);
    let dest = ring(dest_secret, 9);
    let deposit = |epoch: u32, s: u8, payload: u8| -> Result<Deposit, Box<dyn std::error::Error>> {
        Ok(Deposit::new(
            epoch,
            &[
                Copy {
                    bucket: 3,
                    flag: 0x5a,
                },
                Copy {
                    bucket: 200,
                    flag: 1,
                },
            ],
            TagSecret::from_bytes(pattern(s)).seed(),
            wrapped(payload)?,
        )?)
    };
    let local = deposit(300, 0x50, 0x55)?;
    let request = Request::CatchUp(CatchUp {
        bucket: 3,
        epoch: 299,
        detect: DetectionKey::from_bytes(pattern(0x66)),
        after: 41,
        rank: 0,
    });
    let home_key = home
        .by_epoch(300)
        .map(|k| k.verified(HOME))
        .ok_or("no key")?;
    let (slot, _) = seal_slot(
        &home_key,
        ENTRY,
        1_001,
        SlotDeposit::Local(&local),
        &request,
    )?;
    let opened = open_slot(&home, ENTRY, 1_001, &slot)?;
    let (answer, item) = replies(
        opened.replier,
        &DepositReply::Outcome(DepositOutcome::Stored),
    )?;
    println!(
        "name = slot-local-0\nkind = slot-local\nhome_secret = {}",
        to_hex(&home_secret)
    );
    println!(
        "home_epoch = 300\ntick = 1001\nslot = {}",
        to_hex(slot.as_bytes())
    );
    println!(
        "deposit_epoch = 300\ncopies = {}",
        copies_text(local.copies())
    );
    println!(
        "seed = {}\npayload_pattern = 85",
        to_hex(local.seed().as_bytes())
    );
    println!("detect = {}\nafter = 41", to_hex(&pattern::<32>(0x66)));
    println!("answer = {answer}\nreply_item = {item}\n");

    let forward = deposit(9, 0x70, 0x77)?;
    let dest_key = dest.by_epoch(9).map(|k| k.verified(DEST)).ok_or("no key")?;
    let (slot, _) = seal_slot(
        &home_key,
        ENTRY,
        1_002,
        SlotDeposit::Forward {
            dest: &dest_key,
            deposit: &forward,
        },
        &Request::None,
    )?;
    let opened = open_slot(&home, ENTRY, 1_002, &slot)?;
    let OpenedDeposit::Forward { blob, .. } = &opened.deposit else {
        return Err("not a forward".into());
    };
    let inner = open_inner(&dest, HOME, blob)?;
    let inner_answer = inner.replier.seal(DepositOutcome::Retry { epoch: 10 });
    let blob_hex = to_hex(blob.as_bytes());
    let (answer, item) = replies(
        opened.replier,
        &DepositReply::Forwarded(inner_answer.clone()),
    )?;
    println!(
        "name = slot-forward-0\nkind = slot-forward\nhome_secret = {}",
        to_hex(&home_secret)
    );
    println!(
        "home_epoch = 300\ndest_secret = {}\ndest_epoch = 9",
        to_hex(&dest_secret)
    );
    println!(
        "tick = 1002\nslot = {}\ninner_blob = {blob_hex}",
        to_hex(slot.as_bytes())
    );
    println!(
        "deposit_epoch = 9\ncopies = {}",
        copies_text(forward.copies())
    );
    println!(
        "seed = {}\npayload_pattern = 119",
        to_hex(forward.seed().as_bytes())
    );
    println!(
        "retry_epoch = 10\ninner_answer = {}",
        to_hex(inner_answer.as_bytes())
    );
    println!("answer = {answer}\nreply_item = {item}");
    Ok(())
}

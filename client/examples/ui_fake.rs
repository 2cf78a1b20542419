//! The TUI over a fake engine, to try it in a terminal (and in tmux):
//! `cargo run -p hum --example ui_fake [-- onboarding | unlock | N]` where N is how many
//! messages the first room holds (default 200). Prints how long the first frame took.

use std::time::{Duration, Instant};

use hum::api::{
    Command, ContactId, Delivery, Event, LinkState, LinkStatus, MessageId, MessageView, RoomId,
    RoomKind, RoomSummary,
};
use hum::ui::{self, UiOptions};
use tokio::sync::mpsc;

fn room(id: i64, name: &str, kind: RoomKind, unread: u32) -> RoomSummary {
    RoomSummary {
        id: RoomId(id),
        name: name.into(),
        kind,
        members: vec!["alice".into(), "bob".into()],
        unread,
        mentions: 0,
        closed: false,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let opts = UiOptions {
        themes_dirs: vec!["themes".into()],
        demo_hint: Some("fake engine: everything you send is echoed by alice".into()),
        ..UiOptions::default()
    };
    if arg == "onboarding" {
        let r = ui::onboarding(opts).await?;
        println!("onboarding: {:?}", r.map(|(n, _)| n));
        return Ok(());
    }
    if arg == "unlock" {
        let r = ui::unlock(opts, Some("wrong passphrase".into())).await?;
        println!("unlock: {}", r.is_some());
        return Ok(());
    }
    let n: i64 = arg.parse().unwrap_or(200);
    let (etx, erx) = mpsc::channel(1024);
    let (ctx, mut crx) = mpsc::channel(64);
    let started = Instant::now();
    let engine = tokio::spawn(async move {
        let now = 1_764_000_000_000_i64;
        let _ = etx
            .send(Event::Ready {
                me: "me".into(),
                rooms: vec![
                    room(1, "alice", RoomKind::Direct(ContactId(1)), 0),
                    room(2, "bob", RoomKind::Direct(ContactId(2)), 2),
                    room(3, "team", RoomKind::Group, 4),
                ],
                contacts: vec![(ContactId(1), "alice".into()), (ContactId(2), "bob".into())],
            })
            .await;
        let _ = etx
            .send(Event::Link(LinkStatus {
                relay: "127.0.0.1:7800".into(),
                state: LinkState::Up,
                cells_up_per_sec: 10,
                cells_down_per_sec: 10,
                queued: 0,
            }))
            .await;
        let mut next_id = 1_000_000;
        while let Some(c) = crx.recv().await {
            match c {
                Command::LoadHistory {
                    room,
                    before,
                    limit,
                } => {
                    let top = before.map_or(n, |b| b.0);
                    let from = (top - i64::from(limit)).max(0);
                    let messages = (from..top)
                        .map(|i| MessageView {
                            id: MessageId(i),
                            room,
                            sender: if i % 3 == 0 {
                                "me".into()
                            } else {
                                "alice".into()
                            },
                            from_me: i % 3 == 0,
                            text: format!(
                                "message {i}: the quick brown fox 🦊 jumps over the lazy dog 日本語"
                            ),
                            sent_at: now - (n - i) * 60_000,
                            delivery: (i % 3 == 0).then_some(Delivery::Delivered),
                            kind: hum::api::MessageKind::Text,
                        })
                        .collect();
                    let _ = etx
                        .send(Event::History {
                            room,
                            messages,
                            more: from > 0,
                        })
                        .await;
                }
                Command::Send { room, text } => {
                    next_id += 2;
                    let mine = MessageView {
                        id: MessageId(next_id),
                        room,
                        sender: "me".into(),
                        from_me: true,
                        text: text.clone(),
                        sent_at: now + next_id,
                        delivery: Some(Delivery::Queued),
                        kind: hum::api::MessageKind::Text,
                    };
                    let _ = etx.send(Event::Message(mine)).await;
                    let etx2 = etx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let _ = etx2
                            .send(Event::Delivery {
                                room,
                                id: MessageId(next_id),
                                state: Delivery::Sent,
                            })
                            .await;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let _ = etx2
                            .send(Event::Delivery {
                                room,
                                id: MessageId(next_id),
                                state: Delivery::Delivered,
                            })
                            .await;
                        let _ = etx2
                            .send(Event::Message(MessageView {
                                id: MessageId(next_id + 1),
                                room,
                                sender: "alice".into(),
                                from_me: false,
                                text: format!("echo: {text}"),
                                sent_at: now + next_id + 1,
                                delivery: None,
                                kind: hum::api::MessageKind::Text,
                            }))
                            .await;
                    });
                }
                Command::CreateInvite => {
                    let _ = etx
                        .send(Event::Invite {
                            code: format!("hum1-{}", "x7q2".repeat(40)),
                        })
                        .await;
                }
                Command::Quit => break,
                other => {
                    let _ = etx
                        .send(Event::Notice(format!("fake engine got {other:?}")))
                        .await;
                }
            }
        }
    });
    let r = ui::run(erx, ctx, opts).await;
    engine.abort();
    println!("ran for {:?}: {r:?}", started.elapsed());
    Ok(())
}

//! How long the TUI takes to draw: a frame of a 10,000-message room, and the first frame
//! of a fresh UI state (options, theme, Ready, a page of history).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hum::api::{ContactId, Delivery, Event, MessageId, MessageView, RoomId, RoomKind, RoomSummary};
use hum::ui::{Action, App, ColorMode, UiOptions, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn messages(n: i64) -> Vec<MessageView> {
    (0..n)
        .map(|i| MessageView {
            id: MessageId(i),
            room: RoomId(1),
            sender: if i % 3 == 0 {
                "me".into()
            } else {
                format!("user{}", i % 7)
            },
            from_me: i % 3 == 0,
            text: format!(
                "message {i}: the quick brown fox 🦊 jumps over the lazy dog 日本語, and on"
            ),
            sent_at: 1_764_000_000_000 + i * 30_000,
            delivery: (i % 3 == 0).then_some(Delivery::Delivered),
            kind: hum::api::MessageKind::Text,
        })
        .collect()
}

fn app_with(n: i64, w: u16, h: u16) -> App {
    let mut app = App::with_env(&UiOptions::default(), ColorMode::TrueColor, false);
    app.update(Action::Resize(w, h));
    app.update(Action::Engine(Event::Ready {
        me: "me".into(),
        rooms: vec![RoomSummary {
            id: RoomId(1),
            name: "big".into(),
            kind: RoomKind::Direct(ContactId(1)),
            members: vec!["user1".into()],
            unread: 0,
            mentions: 0,
            closed: false,
        }],
        contacts: vec![(ContactId(1), "user1".into())],
    }));
    app.update(Action::Engine(Event::History {
        room: RoomId(1),
        messages: messages(n),
        more: false,
    }));
    app
}

fn bench(c: &mut Criterion) {
    let app = app_with(10_000, 120, 40);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    c.bench_function("frame_10k_messages_120x40", |b| {
        b.iter(|| term.draw(|f| view(black_box(&app), f)).map(|_| ()))
    });
    let mut term = Terminal::new(TestBackend::new(80, 24)).expect("test backend");
    c.bench_function("first_frame_80x24", |b| {
        b.iter(|| {
            let app = app_with(200, 80, 24);
            term.draw(|f| view(&app, f)).map(|_| ())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

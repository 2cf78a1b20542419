# hum: common tasks. `just --list` shows them all.

# Run a relay on all interfaces at the default port; prints its hum:// address first.
relay *ARGS:
    cargo run --release -p hum-relay -- {{ARGS}}

# hum/2 on one machine: two relays, each both entry and mailbox and the other's peer, so
# clients enter at one and are homed at the other. Keys stay in DIR; Ctrl-C stops both.
relay2 DIR="/tmp/hum-relay2" PORT_A="7701" PORT_B="7702":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p hum-relay
    bin=target/release/hum-relay
    mkdir -p "{{DIR}}"
    a=$("$bin" --state "{{DIR}}/a" --listen "127.0.0.1:{{PORT_A}}" --init)
    b=$("$bin" --state "{{DIR}}/b" --listen "127.0.0.1:{{PORT_B}}" --init)
    printf '[[relay]]\naddress = "%s"\nrole = "both"\ncapacity = 64\n' "$b" > "{{DIR}}/a.toml"
    printf '[[relay]]\naddress = "%s"\nrole = "both"\ncapacity = 64\n' "$a" > "{{DIR}}/b.toml"
    echo "relay A: $a"
    echo "relay B: $b"
    trap 'kill $(jobs -p) 2>/dev/null' EXIT INT TERM
    "$bin" --state "{{DIR}}/a" --listen "127.0.0.1:{{PORT_A}}" --peers "{{DIR}}/a.toml" > /dev/null &
    "$bin" --state "{{DIR}}/b" --listen "127.0.0.1:{{PORT_B}}" --peers "{{DIR}}/b.toml" > /dev/null &
    wait

# Open the chat client (first run leads through making a profile).
chat *ARGS:
    cargo run --release -p hum -- {{ARGS}}

# See the whole loop on one machine: throwaway profile, embedded relay, a demo contact.
demo:
    cargo run --release -p hum -- --demo

# The whole test suite, as CI runs it.
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks: crypto, TUI rendering, then the relay load generator against the bare beat
# server (about a minute), then the client figures (history and idle).
bench:
    cargo bench -p hum-shared --bench crypto -- --warm-up-time 1 --measurement-time 3
    cargo bench -p hum --bench render -- --warm-up-time 1 --measurement-time 3
    cargo build --release -p hum -p hum-relay -p hum-tests --bins
    target/release/hum-load hum1 --clients 1000 --seconds 20
    target/release/hum-client-figures

# hum/1's relay load against the bare beat server at a chosen size, e.g. `just load1 3000 30`.
load1 CLIENTS="1000" SECONDS="20":
    cargo build --release -p hum-relay -p hum-tests --bins
    target/release/hum-load hum1 --clients {{CLIENTS}} --seconds {{SECONDS}}

# hum/2's load (docs/RELAY.md, "Load: the proof's run"): USERS users with a known contact
# graph and groups, chatting with churn across epoch changes, over the relays of LAYOUT
# (mesh: one entry and two mailbox relays; pair: two relays each both; single), each a
# curious build writing its log into DIR/LAYOUT beside the ground truth; prints the
# figures (also in DIR/LAYOUT/figures.md). Epochs and sessions are divided by SCALE; the
# tick is TICK milliseconds. At 500 users and scale 20 a run takes about 12 minutes.
load USERS="500" SCALE="12" DIR="/tmp/hum-load" LAYOUT="mesh" TICK="100":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p hum-tests --bins
    cargo build --release -p hum-relay --features curious
    mkdir -p "{{DIR}}/{{LAYOUT}}"
    cp target/release/hum-relay "{{DIR}}/hum-relay-curious"
    # Put the plain relay back: no release binary keeps the curious feature.
    cargo build --release -p hum-relay
    target/release/hum-load run --layout {{LAYOUT}} --users {{USERS}} --scale {{SCALE}} \
        --tick-ms {{TICK}} --relay-bin "{{DIR}}/hum-relay-curious" --out "{{DIR}}/{{LAYOUT}}" \
        | tee "{{DIR}}/{{LAYOUT}}/figures.md"

# A day's catch-up, measured (docs/RELAY.md, "A day away"): one user away for EPOCHS
# epoch changes of EPOCH_TICKS ticks, its contacts writing in 8 of them; prints the time
# from its reconnect to the last message. DELAY is the client's mean wait before each
# epoch's catch-up, in seconds.
away EPOCHS="24" EPOCH_TICKS="60" DELAY="20":
    cargo build --release -p hum-relay -p hum-tests --bins
    target/release/hum-load away --epochs-away {{EPOCHS}} --epoch-ticks {{EPOCH_TICKS}} \
        --catch-up-delay-secs {{DELAY}} --out /tmp/hum-away

# The proof of issue 12: the load over a mesh and over a single relay (the positive
# control: hum/1's view), then the attack program on the entry relay's log, each
# mailbox relay's log and the single relay's log, each against its run's ground truth.
proof USERS="500" SCALE="20" DIR="/tmp/hum-proof" TICK="100":
    #!/usr/bin/env bash
    set -euo pipefail
    just load {{USERS}} {{SCALE}} "{{DIR}}" mesh {{TICK}}
    just load {{USERS}} {{SCALE}} "{{DIR}}" single {{TICK}}
    cargo build --release -p hum-tests --bin hum-attack
    attack() { echo "## $1"; target/release/hum-attack score --log "$2" --truth "$3" --role "$4"; echo; }
    {
    attack "entry relay (mesh)" "{{DIR}}/mesh/entry.curious.jsonl" "{{DIR}}/mesh/truth.jsonl" entry
    attack "mailbox relay A (mesh)" "{{DIR}}/mesh/mailbox-a.curious.jsonl" "{{DIR}}/mesh/truth.jsonl" mailbox
    attack "mailbox relay B (mesh)" "{{DIR}}/mesh/mailbox-b.curious.jsonl" "{{DIR}}/mesh/truth.jsonl" mailbox
    attack "single relay (hum/1's view)" "{{DIR}}/single/single.curious.jsonl" "{{DIR}}/single/truth.jsonl" all
    } | tee "{{DIR}}/attack.md"

# What a network observer sees: run the observer test and print its statistics.
observe CELLS="10000":
    cargo test -p hum-tests --test observer -- --nocapture
    HUM_OBSERVE_CELLS={{CELLS}} cargo test --release -p hum-tests --test observer_hum2 -- --ignored --nocapture

# Fuzz one target on the stable toolchain, installing cargo-fuzz when it is missing:
# just fuzz cell|envelope|invite|stored_rows|group_control [libFuzzer options]
# e.g. `just fuzz envelope -runs=10000000`. No sanitizer: hum forbids unsafe code, and
# AddressSanitizer would make the runs several times slower.
fuzz TARGET="envelope" *ARGS="-max_total_time=300":
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none {{TARGET}} -- -print_final_stats=1 {{ARGS}}

# Everything CI runs.
ci:
    bash .ci/run

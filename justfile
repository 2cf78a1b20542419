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
    target/release/hum-load --clients 1000 --seconds 20
    target/release/hum-client-figures

# The relay load generator at a chosen size, e.g. `just load 3000 30`.
load CLIENTS="1000" SECONDS="20":
    cargo build --release -p hum-relay -p hum-tests --bins
    target/release/hum-load --clients {{CLIENTS}} --seconds {{SECONDS}}

# What a network observer sees: run the observer test and print its statistics.
observe:
    cargo test -p hum-tests --test observer -- --nocapture

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

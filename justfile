# hum: common tasks. `just --list` shows them all.

# Run a relay on all interfaces at the default port; prints its hum:// address first.
relay *ARGS:
    cargo run --release -p hum-relay -- {{ARGS}}

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

# Benchmarks: crypto and cell micro-benchmarks, then the relay load generator (about a minute).
bench:
    cargo bench -p hum-shared
    cargo run --release -p hum-tests --bin hum-load -- --clients 1000 --seconds 20

# Everything CI runs.
ci:
    bash .ci/run

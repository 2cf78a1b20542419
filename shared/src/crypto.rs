//! End-to-end cryptography: identities, invites, X3DH, Double Ratchet, group sender keys
//! and sealed envelopes. See docs/PROTOCOL.md, section "Cryptography".

//! Passphrase-derived key sealing the client's store (in progress).

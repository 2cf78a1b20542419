//! hum/1: the path of ALPN `hum/1` clients (docs/PROTOCOL.md §1 to §5): cells of
//! operations, mailboxes by id, one connection per client and relay. It lives apart from
//! the hum/2 roles so it can go in one piece once every client speaks hum/2.

pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod mailbox;

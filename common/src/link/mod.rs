//! The link: TCP, then TLS on links that leave the LAN, then the yamux
//! multiplexer, then one control stream plus one stream per call. The same
//! protocol on every hop.

pub mod actor;
pub mod coalesce;
pub mod control;
pub mod flow;
pub mod frame;
pub mod keepalive;
pub mod message;
pub mod mux;
pub mod outbox;
pub mod pages;
pub mod plain;
pub mod roles;
pub mod splice;
pub mod tls;
pub mod tls_stream;
pub mod transport;

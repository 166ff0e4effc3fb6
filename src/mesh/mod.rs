//! MESH (NHS England's Message Exchange for Social care and Health): the
//! adapter through which documents reach GP practices as GP Connect Send
//! Document messages, and their acknowledgements come back.
//!
//! - [`client`]: the MESH API over HTTPS (auth header in [`auth`]).
//! - [`sink`]: the outbox sink for `MeshSend` rows (tracking, then send).
//! - [`inbox`]: polls the bridge's mailbox and hands acknowledgements to the engine.

pub mod auth;
pub mod client;
pub mod error;
pub mod inbox;
pub mod sink;

pub use client::MeshClient;
pub use error::MeshError;

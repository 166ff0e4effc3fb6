//! The command line's subcommands that are more than a call into the
//! library: each parses its own arguments and prints its own output.
//! Declared by `main.rs` only (the binary), not by the library.

pub mod outbox;
pub mod report;

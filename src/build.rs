//! Build script: rebuilds the crate when a migration is added or changed.
//!
//! Why: `sqlx::migrate!` embeds `src/store/migrations/{sqlite,postgres}` at
//! compile time, and cargo only re-runs a macro when a file it already
//! tracks changes. A new migration is a new file, so without this `cargo
//! build` kept the old list and the daemon and the tests silently migrated
//! to the previous schema (seen here: a new migration was not in the
//! binary until a source file was touched). This is the script sqlx
//! recommends (`sqlx migrate build-script`); a directory is scanned whole.

fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}

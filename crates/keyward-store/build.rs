//! The migrations are embedded at compile time (`embed_migrations!`): rebuild this crate
//! whenever a migration file is added or changed, not only when Rust sources change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

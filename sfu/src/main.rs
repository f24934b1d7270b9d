//! `parley-sfu`: the SFU's binary. Everything is in the library (`lib.rs`), which the fuzz
//! targets (fuzz/) link too.

fn main() -> anyhow::Result<()> {
    parley_sfu::run()
}

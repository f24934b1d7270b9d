//! `parley`: the command-line client of Parley, end-to-end encrypted.
//!
//! HTTP goes through `parley-sdk`, every cryptographic operation through `parley-client-core`; this crate
//! adds profiles, the encrypted state store, the flows between the two, and output.

mod api;
mod args;
mod commands;
mod e2ee;
mod error;
mod media;
mod output;
mod prompt;
mod session;
mod store;
mod watch;

use clap::Parser;

use crate::args::Cli;
use crate::error::CliError;
use crate::session::Context;
use crate::store::{data_root, Profile};

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let code = match run(cli) {
        Ok(()) => 0,
        Err(error) => {
            if json {
                let value =
                    serde_json::json!({"error": {"message": error.to_string(), "exit_code": error.exit_code()}});
                eprintln!("{value}");
            } else {
                eprintln!("parley: {error}");
            }
            error.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("start", "the async runtime"))?;
    let profile = Profile::open(&data_root()?, &cli.profile)?;
    let mut ctx = Context::new(profile, cli.server.clone());
    runtime.block_on(commands::run(cli, &mut ctx))
}

//! `parley-sdk-gen`: rewrites `sdk/src/generated.rs` from `openapi/openapi.json`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match parley_sdk_gen::generate_from_spec_file() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let path = parley_sdk_gen::output_path();
    match std::fs::write(&path, code) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot write {}: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}

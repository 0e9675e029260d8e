//! The `latchkey` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    latchkey::cli::run(latchkey::cli::Cli::parse())
}

//! `lifeboat`: the operator's command line. Parsing and exit codes here; each command is in
//! `commands`, through the functions' own code paths.

mod args;
mod commands;
mod operator;
mod stack;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("lifeboat: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

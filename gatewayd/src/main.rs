//! gatewayd: parse the command line, set up logging, run the gateway.

use std::process::ExitCode;

use clap::Parser;
use gatewayd::config::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::daemon::logging::init("info");
    let run = || -> anyhow::Result<()> {
        let config = cli.into_config()?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let shutdown = common::daemon::shutdown::on_signals()?;
            gatewayd::run(config, shutdown).await
        })
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatewayd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

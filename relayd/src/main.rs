//! relayd: parse the command line, set up logging, run the relay.

use std::process::ExitCode;

use clap::Parser;
use common::credential::FleetKey;
use relayd::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::daemon::logging::init("info");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relayd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Credential {
            fleet_key_file,
            number,
        }) => {
            let key = FleetKey::load(&fleet_key_file)?;
            println!("{}", key.device_secret(&number));
            return Ok(());
        }
        Some(Command::Peers(q)) => return show("peers", &q),
        Some(Command::Directory(q)) => return show("directory", &q),
        None => {}
    }
    let config = cli.run.into_config()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = common::daemon::shutdown::on_signals()?;
        relayd::run(config, shutdown).await
    })
}

fn show(what: &str, q: &relayd::cli::QueryArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = runtime.block_on(relayd::admin::query(&q.data_dir, what))?;
    relayd::admin::print(what, &value, q.json)
}

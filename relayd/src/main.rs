//! relayd: parse the command line, merge it with the config file, set up
//! logging, run the relay (reloading the config file on SIGHUP).

use std::process::ExitCode;
use std::sync::Arc;

use common::credential::FleetKey;
use relayd::cli::{Cli, Command, RunArgs};
use relayd::config::RelayConfig;
use relayd::server::Reloader;

/// relayd runs on mimalloc, not glibc's allocator. Learning a peer's
/// snapshot is millions of small allocations made on the link's task and
/// freed on the store's writer thread: on glibc, malloc and free (mostly
/// consolidating chunks another thread freed) took half of the relay's CPU
/// time. A million numbers took 6.0 to 9.8 s on glibc and 3.1 to 4.3 s on
/// mimalloc, in alternating runs (`--bench network -- snapshot`). Built without transparent huge pages
/// (the `no_thp` feature): with them an idle relay held 40 MB instead of 2.
/// Tuned in [`relayd::allocator`].
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    relayd::allocator::tune();
    let cli: Cli = common::daemon::cli_docs::parse();
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
            generation,
        }) => {
            let key = FleetKey::load(&fleet_key_file)?;
            println!("{}", key.device_secret_gen(&number, generation));
            return Ok(());
        }
        Some(Command::Tls { command }) => {
            for line in relayd::tls_cmd::run(command)? {
                println!("{line}");
            }
            return Ok(());
        }
        Some(Command::Revoke { data_dir, number }) => {
            let q = relayd::cli::QueryArgs {
                data_dir,
                json: false,
            };
            return show(&format!("revoke {number}"), &q);
        }
        Some(Command::Peers(q)) => return show("peers", &q),
        Some(Command::Directory(q)) => return show("directory", &q),
        None => {}
    }
    let args = Arc::new(cli.run);
    let settings = args.settings()?;
    let log = common::daemon::logging::init_with(Some(&settings.log_level), "info");
    let config = RelayConfig::from_settings(settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(common::daemon::memory::on_thread_idle)
        .build()?;
    runtime.block_on(async {
        let shutdown = common::daemon::shutdown::on_signals()?;
        let reloader = Reloader::new(
            move || RunArgs::settings(&args),
            log,
            common::daemon::shutdown::on_reload()?,
        );
        relayd::server::run_with(config, shutdown, Some(reloader)).await
    })
}

fn show(what: &str, q: &relayd::cli::QueryArgs) -> anyhow::Result<()> {
    common::daemon::logging::init("warn");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = runtime.block_on(relayd::admin::query(&q.data_dir, what))?;
    relayd::admin::print(what, &value, q.json)
}

//! faxrecv: parse the command line, set up logging, run the device.

use std::process::ExitCode;
use std::time::Duration;

use common::credential::read_secret_file;
use common::device::answer::AnswerPolicy;
use common::device::config::DeviceFile;
use common::hooks::{SigningKey, Target};
use common::link::control::LinkConfig;
use faxrecv::cli::{Cli, EXIT_ERROR, EXIT_USAGE};
use faxrecv::device::{self, DeviceConfig};
use faxrecv::extras::Extras;
use faxrecv::hooks::HookSetup;
use faxrecv::pause::PagePause;

fn main() -> ExitCode {
    common::daemon::memory::tune_allocator();
    let cli: Cli = common::daemon::cli_docs::parse();
    common::daemon::logging::init("info");
    let (mut config, hooks) = match config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faxrecv: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The command line was fine; a directory that cannot be made (a file in
    // the way, a read-only disk) is a failure of the machine: exit 1, not 2.
    if let Err(e) = std::fs::create_dir_all(&config.dir) {
        eprintln!(
            "faxrecv: cannot create directory {}: {e}",
            config.dir.display()
        );
        return ExitCode::from(EXIT_ERROR);
    }
    if let Some(hooks) = hooks {
        match hooks.open(&config.dir) {
            Ok(hooks) => config.hooks = Some(hooks),
            Err(e) => {
                eprintln!("faxrecv: {e:#}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    let run = async {
        let shutdown = common::daemon::shutdown::on_signals()?;
        // A file size limit (systemd's LimitFSIZE=) must fail a write, which
        // hangs up the call with the reason, not kill the device: with a
        // handler installed, SIGXFSZ no longer terminates and write() says EFBIG.
        let mut xfsz =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ))?;
        tokio::spawn(async move { while xfsz.recv().await.is_some() {} });
        if let Some(pause) = &config.pause {
            pause.listen_for_sigusr1()?;
        }
        anyhow::Ok(device::run(config, shutdown).await)
    };
    let stop = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run));
    common::daemon::notify::flush(Duration::from_secs(1));
    match stop {
        Ok(stop) => {
            if let Some(message) = stop.message {
                eprintln!("faxrecv: {message}");
            }
            ExitCode::from(stop.code)
        }
        Err(e) => {
            eprintln!("faxrecv: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The device's configuration, and the hooks to open once DIR exists.
fn config(cli: &Cli) -> anyhow::Result<(DeviceConfig, Option<HookSetup>)> {
    // What the flags and environment leave open, from the device config file.
    let file = DeviceFile::load()?;
    let missing = |flag: &str, key: &str| anyhow::anyhow!(DeviceFile::missing(flag, key));
    let gateway = cli
        .gateway
        .clone()
        .or(file.gateway)
        .ok_or_else(|| missing("--gateway", "gateway"))?;
    let number = cli
        .number
        .clone()
        .or(file.number)
        .ok_or_else(|| missing("--number", "number"))?;
    let secret_file = cli
        .secret_file
        .clone()
        .or(file.secret_file)
        .ok_or_else(|| missing("--secret-file (or FAXMESH_SECRET)", "secret_file"))?;
    let dir = cli
        .dir
        .clone()
        .or(file.dir)
        .ok_or_else(|| missing("--dir", "dir"))?;
    let ca_file = cli.ca_file.clone().or(file.ca_file);
    let secret = read_secret_file(&secret_file)
        .map_err(|e| anyhow::anyhow!("cannot read secret file {}: {e}", secret_file.display()))?;
    if cli.busy && cli.reject {
        anyhow::bail!("--busy and --reject cannot be combined; choose one");
    }
    if !(cli.heartbeat_secs > 0.0 && cli.heartbeat_secs <= 3600.0) {
        anyhow::bail!(
            "invalid --heartbeat-secs {}: use seconds above 0 and at most 3600",
            cli.heartbeat_secs
        );
    }
    let mut policy = AnswerPolicy::new(cli.capabilities());
    policy.busy = cli.busy;
    policy.reject = cli.reject;
    policy.hangup_after_page = cli.hangup_after_page;
    let pause = cli.pause_at_page.map(PagePause::new);
    let hooks = hook_setup(cli)?;
    let device = DeviceConfig {
        on_fax: None,
        embedded: false,
        gateway,
        number,
        secret,
        dir,
        once: cli.once,
        json: cli.json,
        policy,
        pause,
        read_rate: cli.read_rate_kib.map(|kib| kib.saturating_mul(1024)),
        link: LinkConfig {
            heartbeat: Duration::from_secs_f64(cli.heartbeat_secs),
            tls: common::link::tls::ClientTls::new(ca_file.as_deref())?,
            ..LinkConfig::default()
        },
        extras: Extras {
            png: cli.png,
            pdf: cli.pdf,
        },
        hooks: None,
    };
    Ok((device, hooks))
}

/// `--on-receive` and `--notify-url` checked: the URL parses, the key file
/// is there and long enough.
fn hook_setup(cli: &Cli) -> anyhow::Result<Option<HookSetup>> {
    let mut targets = Vec::new();
    if let Some(cmd) = &cli.on_receive {
        targets.push(Target::command(cmd.as_str()));
    }
    let mut key = None;
    if let Some(url) = &cli.notify_url {
        targets.push(Target::url(url)?);
        let Some(path) = &cli.notify_key_file else {
            anyhow::bail!(
                "--notify-url needs --notify-key-file F, the key its bodies are signed with \
                 (at least 16 bytes; e.g. `openssl rand -hex 32 > F`)"
            );
        };
        key = Some(SigningKey::from_file(path)?);
    }
    Ok((!targets.is_empty()).then_some(HookSetup { targets, key }))
}

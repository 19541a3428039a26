//! Shell completions and man pages for every binary, from its clap command
//! (`--generate-completions SHELL`, `--generate-man`, both hidden).

use clap::{Arg, ArgAction, Command};

pub use clap_complete::Shell;

/// Adds the hidden `--generate-completions SHELL` and `--generate-man` flags.
/// Both are exclusive, so the binary's required flags need not be given.
pub fn with_generators(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("generate-completions")
            .long("generate-completions")
            .value_name("SHELL")
            .value_parser(clap::value_parser!(Shell))
            .exclusive(true)
            .hide(true)
            .help("Print shell completions (bash, zsh, fish, elvish, powershell) and exit"),
    )
    .arg(
        Arg::new("generate-man")
            .long("generate-man")
            .action(ArgAction::SetTrue)
            .exclusive(true)
            .hide(true)
            .help("Print the man page (roff) and exit"),
    )
}

/// If the parsed arguments ask for completions or a man page, prints them to
/// stdout and returns true (the binary then exits 0).
pub fn generate_if_asked(matches: &clap::ArgMatches, mut cmd: Command) -> std::io::Result<bool> {
    let mut out = std::io::stdout().lock();
    if let Some(shell) = matches.get_one::<Shell>("generate-completions") {
        let name = cmd.get_name().to_owned();
        clap_complete::generate(*shell, &mut cmd, name, &mut out);
        return Ok(true);
    }
    if matches.get_flag("generate-man") {
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return Ok(true);
    }
    Ok(false)
}

/// Parses the command line of `T`, first serving the generator flags.
/// Exits the process after printing completions or a man page.
pub fn parse<T: clap::Parser>() -> T {
    let cmd = with_generators(T::command());
    let matches = cmd.clone().get_matches();
    match generate_if_asked(&matches, cmd) {
        Ok(true) => std::process::exit(0),
        Ok(false) => {}
        Err(e) => {
            eprintln!("{}: {e}", T::command().get_name());
            std::process::exit(1);
        }
    }
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

//! faxrecv's command line and exit codes.

use std::path::PathBuf;

use clap::Parser;
use common::codec::{Capabilities, Compression, Resolution};
use common::number::Number;

const EXAMPLES: &str = "\
Examples:
  faxrecv --gateway 127.0.0.1:4700 --number 1002 --secret-file 1002.secret --dir ~/faxes
  FAXMESH_SECRET=1002.secret faxrecv --gateway gw.lan:4700 --number 1002 --dir in --once --json
  faxrecv --gateway tls://relay-a.example.net:4710 --ca-file ca.pem --number 1002 ...   # no gateway
  faxrecv ... --busy                    # answer every call with \"busy\"
  faxrecv ... --hangup-after-page 2     # drop the line after confirming page 2
  faxrecv ... --pause-at-page 2         # store page 2, confirm it on SIGUSR1
  faxrecv ... --read-rate-kib 64        # a slow line: read calls at 64 KiB/s
  faxrecv ... --png --pdf               # also DIR/<call id>-p1.png ... and DIR/<call id>.pdf
  faxrecv ... --on-receive 'lp -d office'   # per fax: its JSON on stdin, .tif (.png, .pdf) as args
  faxrecv ... --notify-url https://hooks.example.net/fax --notify-key-file hook.key   # signed POST
  faxrecv --generate-completions bash > /etc/bash_completion.d/faxrecv
  faxrecv --generate-man > /usr/local/share/man/man1/faxrecv.1

Each fax is stored as DIR/<call id>.tif (TIFF Class F) with DIR/<call id>.json beside it;
a fax still arriving (or cut short) is DIR/<call id>.tif.part; a retry of the call resumes it. With --png/--pdf those are written once the
.tif is complete, before the JSON. One line is printed per fax received. Every flag may also
come from FAXRECV_<FLAG> (e.g. FAXRECV_GATEWAY), the secret file from FAXMESH_SECRET; --gateway,
--number, --secret-file, --ca-file and --dir also from the device config file
(~/.config/faxmesh/device.toml, then /etc/faxmesh/device.toml: gateway, number, secret_file,
ca_file, dir).
--on-receive and --notify-url are tried once the .json is written, and retried (1 s doubling
to 5 min) until they succeed, also across restarts (DIR/.faxrecv-outbox); the fax stays in DIR.

Exit codes: 0 stopped cleanly (or --once: the call was handled), 1 error (DIR cannot be
created, say), 2 bad usage (a bad flag value or secret file, flags that do not go together),
4 login refused (wrong or revoked secret, or \"too many attempts\" from this address),
5 replaced by a newer login of the same number (or its secret was revoked),
9 (--once) the call ended before the fax was complete.";

pub const EXIT_ERROR: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_AUTHORIZED: u8 = 4;
pub const EXIT_REPLACED: u8 = 5;
pub const EXIT_INCOMPLETE: u8 = 9;

/// The receiving fax device: answers calls for one number and stores the faxes.
#[derive(Debug, Parser)]
#[command(name = "faxrecv", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Gateway to dial, HOST:PORT (plaintext, on the LAN); a relay dialed
    /// directly: tls://HOST:PORT.
    #[arg(long, value_name = "ADDR", env = "FAXRECV_GATEWAY")]
    pub gateway: Option<String>,
    /// CA certificates (PEM) a relay dialed with tls:// is checked against
    /// [default: the system's roots].
    #[arg(long, value_name = "F", env = "FAXRECV_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// This device's fax number.
    #[arg(long, value_name = "N", env = "FAXRECV_NUMBER")]
    pub number: Option<Number>,
    /// File holding this number's secret (from `relayd credential`).
    #[arg(long, value_name = "F", env = "FAXMESH_SECRET")]
    pub secret_file: Option<PathBuf>,
    /// Directory the faxes are stored in (created if missing).
    #[arg(long, value_name = "DIR", env = "FAXRECV_DIR")]
    pub dir: Option<PathBuf>,
    /// Handle one call, then exit.
    #[arg(long)]
    pub once: bool,
    /// Print one JSON object per fax instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Answer every call with "busy" (for testing a relay network).
    #[arg(long)]
    pub busy: bool,
    /// Refuse every call (for testing).
    #[arg(long)]
    pub reject: bool,
    /// Hang up right after confirming page N (for testing).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub hangup_after_page: Option<u32>,
    /// Store page N, then hold its confirmation until SIGUSR1 (for testing
    /// faults at a known point of a call; the systemd status says "paused").
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub pause_at_page: Option<u32>,
    /// Read each call at most N KiB per second, like a slow line (for testing backpressure).
    #[arg(long, value_name = "N", env = "FAXRECV_READ_RATE_KIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub read_rate_kib: Option<u64>,
    /// Take at most N pages per fax (announced to the caller).
    #[arg(long, value_name = "N", env = "FAXRECV_MAX_PAGES", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pages: Option<u32>,
    /// Compressions this device decodes, best first.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "g4,mr,mh", env = "FAXRECV_COMPRESSIONS",
          value_parser = parse::<Compression>)]
    pub compressions: Vec<Compression>,
    /// Vertical resolutions this device prints.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "standard,fine,superfine", env = "FAXRECV_RESOLUTIONS",
          value_parser = parse::<Resolution>)]
    pub resolutions: Vec<Resolution>,
    /// Page widths in pixels this device prints (1728 = A4/Letter, 2048 = B4, 2432 = A3).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1728,2048,2432", env = "FAXRECV_WIDTHS",
          value_parser = parse_width)]
    pub widths: Vec<u32>,
    /// Seconds between heartbeats to the gateway.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        env = "FAXRECV_HEARTBEAT_SECS"
    )]
    pub heartbeat_secs: f64,
    /// Also write each page as DIR/<call id>-pN.png (1-bit, with its resolution).
    #[arg(long, env = "FAXRECV_PNG")]
    pub png: bool,
    /// Also write each fax as DIR/<call id>.pdf (the Group 4 data passed through).
    #[arg(long, env = "FAXRECV_PDF")]
    pub pdf: bool,
    /// Run CMD for each fax received, as `sh -c 'CMD "$@"'` with the fax's JSON
    /// on stdin and its files (.tif, then any .png and .pdf) as arguments;
    /// retried until it exits 0 (at most 60 s a run).
    #[arg(long, value_name = "CMD", env = "FAXRECV_ON_RECEIVE")]
    pub on_receive: Option<String>,
    /// POST each fax's JSON to URL (http:// or https://), signed in a
    /// Faxmesh-Signature header with --notify-key-file; retried until a 2xx.
    #[arg(long, value_name = "URL", env = "FAXRECV_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// File holding the key --notify-url bodies are signed with (at least 16
    /// bytes; surrounding whitespace is ignored).
    #[arg(long, value_name = "F", env = "FAXRECV_NOTIFY_KEY_FILE")]
    pub notify_key_file: Option<PathBuf>,
}

impl Cli {
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            compressions: self.compressions.clone(),
            resolutions: self.resolutions.clone(),
            widths: self.widths.clone(),
            max_pages: self.max_pages.unwrap_or(u32::MAX),
        }
    }
}

fn parse<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

fn parse_width(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(w @ (1728 | 2048 | 2432)) => Ok(w),
        _ => Err(format!("invalid width '{s}': use 1728, 2048 or 2432")),
    }
}

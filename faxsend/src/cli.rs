//! Command-line arguments of faxsend.

use std::path::PathBuf;

use clap::{Args, Parser};
use common::codec::tagline::TagLineFormat;
use common::codec::{Compression, EncodeOptions, Paper, Resolution};
use common::number::{CallId, Number};

const EXAMPLES: &str = "\
Examples:
  Send a letter and a scan from 1001 to 1002 through the LAN's gateway:
    faxsend --gateway 127.0.0.1:4700 --from 1001 --secret-file 1001.secret --to 1002 \\
            letter.png scan.tif

  Redial up to 5 times, 1 minute apart then 2, 4, ... (busy, offline, cut):
    faxsend --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret --to 1002 \\
            --retries 5 --retry-interval 60 letter.png

  The same, with the delivery report as one JSON object:
    FAXMESH_SECRET=1001.secret faxsend --gateway gw.lan:4700 --from 1001 --to 1002 --json letter.png

  Without a gateway, dialing a relay directly over TLS:
    faxsend --gateway tls://relay-a.example.net:4710 --ca-file ca.pem --from 1001 ... letter.png

  Send a PDF with a cover page (the tag line on every page names the sender):
    faxsend --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret --to 1002 \\
            --cover --from-name \"Front desk\" --to-name Accounts --subject \"Invoice 42\" \\
            --comment \"Please pay by Friday.\" invoice.pdf

  Encode into a fax file, without sending anything:
    faxsend letter.pdf photo.jpg notes.txt --output fax.tif

  Hand a fax for two recipients to the gateway's queue and exit at once; the
  gateway redials until 17:00 (one job id per recipient is printed):
    faxsend --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret \\
            --to 1002 --to 1003 --queue --kill-after 8h letter.pdf
    faxstat --gateway gw.lan:4700 --from 1001 --secret-file 1001.secret --wait 17 18

  Queue it for tonight:
    faxsend ... --queue --send-at 2026-12-24T22:00:00+01:00 letter.pdf

  Look at exactly what would be sent (cover page and tag lines included):
    faxsend --from 1001 --to 1002 --cover --subject Hello letter.pdf --output preview.tif

  A tag line of your own, or none:
    faxsend ... --tagline \"{date}|{name} {number}|{page}/{pages}\" letter.pdf
    faxsend ... --no-tagline letter.pdf

  Standard resolution, Group 3 2D (MR), dithered for a photograph:
    faxsend photo.jpg --resolution standard --compression mr --dither --output photo.tif

Settings: flags, then FAXMESH_GATEWAY, FAXMESH_FROM, FAXMESH_SECRET and FAXMESH_CA_FILE,
then ~/.config/faxmesh/device.toml, then /etc/faxmesh/device.toml (gateway, number,
secret_file, ca_file, queue, from_name, kill_after), so after setup:
    faxsend --to 1002 letter.pdf

Exit codes:
   0  every page confirmed by the callee (or, with --output, the file written)
   1  internal error: the machine failed, not the input (e.g. --output cannot
      be written, or the temp file beside it cannot be made)
   2  bad input or usage (nothing was sent): a file that cannot be read or
      decoded, a bad flag value, options that do not go together
   3  cannot reach the gateway, or no path to the callee
   4  not authorized (wrong or revoked secret, \"too many attempts\" from this
      address, or calling as a number not logged in)
   5  unknown number
   6  offline
   7  busy
   8  rejected by the callee, or over a relay's limit (the report names it)
   9  partial delivery (some pages confirmed; see the report)
  10  timeout
  11  the call was cut before any page was confirmed
With --retries, the code is that of the last attempt. With --queue: 0 once the
gateway holds the jobs; 2 bad input; 3 the gateway is unreachable or did not
take the fax (the reason is printed: no queue, disk full, ...); 4 not authorized.";

/// The sending fax device: turns documents (PDFs, images, text) into fax pages and sends them.
#[derive(Parser, Debug)]
#[command(name = "faxsend", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Files to send, in order: PDF (every page), PNG, JPEG (turned as its
    /// EXIF orientation says), GIF, BMP, PNM, TIFF (every page, fax TIFFs
    /// included) or UTF-8 text (laid out in pages).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// How to encode the pages.
    #[command(flatten)]
    pub encode: EncodeArgs,

    /// Cover page and tag line.
    #[command(flatten)]
    pub extras: ExtrasArgs,

    /// Write the encoded fax to this TIFF Class F file instead of sending it
    /// (with --from, --to and the cover flags: exactly what would be sent).
    #[arg(long, value_name = "OUT.tif", conflicts_with_all = ["gateway", "secret_file", "retries", "call_id"])]
    pub output: Option<PathBuf>,

    /// How to reach the callee.
    #[command(flatten)]
    pub call: CallArgs,

    /// Handing the fax to the gateway's queue.
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// `--queue` and when the gateway tries the fax.
#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Hand the fax to the gateway's queue and exit once it is on the
    /// gateway's disk: the gateway calls (and redials) for you. Prints one
    /// job id per recipient; follow them with faxstat, cancel with faxrm.
    #[arg(long, conflicts_with_all = ["output", "call_id"])]
    pub queue: bool,

    /// Call at once even when the device config file says `queue = true`.
    #[arg(long, conflicts_with = "queue")]
    pub no_queue: bool,

    /// With --queue: not before TIME, RFC 3339 (2026-12-24T09:00:00+01:00)
    /// or a duration from now (90m, 2h, 1d).
    #[arg(long, value_name = "TIME", requires = "queue", value_parser = parse_when)]
    pub send_at: Option<When>,

    /// With --queue: the job fails once this long has passed since now
    /// without delivery (HylaFAX's kill time) [default: 3h].
    #[arg(long, value_name = "DURATION", requires = "queue", value_parser = parse_duration)]
    pub kill_after: Option<std::time::Duration>,

    /// With --queue: attempts in all, the first included [default: --retries
    /// plus one when given, else 12].
    #[arg(long, value_name = "N", requires = "queue", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_tries: Option<u32>,

    /// With --queue: the gateway POSTs each of the job's events (queued,
    /// sending, waiting, done, failed, canceled) to URL as JSON, signed
    /// with the gateway's key (Faxmesh-Signature), retried until answered 2xx.
    #[arg(long, value_name = "URL", requires = "queue", value_parser = parse_url)]
    pub notify_url: Option<String>,
}

/// An http(s) URL for a webhook.
fn parse_url(s: &str) -> Result<String, String> {
    common::hooks::Target::url(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

impl Cli {
    /// Fills what the flags and environment left open from the device
    /// config file (`common::device::config`); nothing in encode-only mode
    /// (--output) but the sender's name.
    pub fn with_device_file(
        mut self,
        file: common::device::config::DeviceFile,
    ) -> Result<Cli, String> {
        self.extras.from_name = self.extras.from_name.or(file.from_name);
        if self.output.is_some() {
            return Ok(self);
        }
        let call = &mut self.call;
        call.gateway = call.gateway.take().or(file.gateway);
        call.from = call.from.take().or(file.number);
        call.secret_file = call.secret_file.take().or(file.secret_file);
        call.ca_file = call.ca_file.take().or(file.ca_file);
        let q = &mut self.queue;
        q.queue = q.queue || (file.queue == Some(true) && !q.no_queue);
        if q.queue && q.kill_after.is_none() {
            q.kill_after = file
                .kill_after
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("kill_after in the device config file: {e}"))?;
        }
        Ok(self)
    }
}

/// A point in time given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Unix milliseconds.
    At(u64),
    /// From now.
    After(std::time::Duration),
}

impl When {
    /// Unix milliseconds, counting a duration from `now_ms`.
    pub fn unix_ms(self, now_ms: u64) -> u64 {
        match self {
            When::At(ms) => ms,
            When::After(d) => now_ms + d.as_millis() as u64,
        }
    }
}

/// RFC 3339 or a duration from now.
pub fn parse_when(s: &str) -> Result<When, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(When::After(d));
    }
    match s.parse::<jiff::Timestamp>() {
        Ok(t) if t.as_millisecond() >= 0 => Ok(When::At(t.as_millisecond() as u64)),
        _ => Err(format!(
            "invalid time '{s}': use RFC 3339 (2026-12-24T09:00:00+01:00) or a duration from now (90m, 2h, 1d)"
        )),
    }
}

/// A duration such as 90m, 3h or 1d.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("invalid duration '{s}': use e.g. 90m, 3h or 1d")),
    }
}

/// Who calls whom, through which gateway.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// Gateway to dial, HOST:PORT (plaintext, on the LAN); a relay dialed
    /// directly: tls://HOST:PORT.
    #[arg(long, value_name = "ADDR", env = "FAXMESH_GATEWAY")]
    pub gateway: Option<String>,

    /// CA certificates (PEM) a relay dialed with tls:// is checked against
    /// [default: the system's roots].
    #[arg(long, value_name = "F", env = "FAXMESH_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// This device's fax number (the caller).
    #[arg(long, value_name = "N", env = "FAXMESH_FROM")]
    pub from: Option<Number>,

    /// File holding the caller's secret (from `relayd credential`).
    #[arg(long, value_name = "F", env = "FAXMESH_SECRET")]
    pub secret_file: Option<PathBuf>,

    /// The callee's fax number; with --queue, repeat it for several
    /// recipients (one job each).
    #[arg(long, value_name = "M")]
    pub to: Vec<Number>,

    /// Print the delivery report as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for the callee to answer.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub answer_timeout: u64,

    /// Seconds to wait for each page's confirmation.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub page_timeout: u64,

    /// Redial up to N more times when the call was busy, offline, cut,
    /// timed out or found no path; a cut fax resumes at its first missing page.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Seconds to wait before the first redial.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub retry_interval: f64,

    /// Each further wait is the previous one times F (1 keeps it fixed); at
    /// most 10 minutes, or the first wait if longer.
    #[arg(long, value_name = "F", default_value = "2", value_parser = parse_backoff)]
    pub retry_backoff: f64,

    /// Send as this call id (32 hex digits) instead of a new one: a later run
    /// retrying a fax (the id is in the report) resumes it at the callee.
    #[arg(long, value_name = "ID")]
    pub call_id: Option<CallId>,
}

/// Seconds: a finite number, 0 or more.
fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid seconds '{s}': use a number from 0 to 86400"
        )),
    }
}

/// A backoff factor from 1 to 10.
fn parse_backoff(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.0..=10.0).contains(&v) => Ok(v),
        _ => Err(format!("invalid factor '{s}': use a number from 1 to 10")),
    }
}

/// How images become fax pages.
#[derive(Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Vertical resolution: standard (98 lpi), fine (196) or superfine (391).
    #[arg(long, value_name = "RES", default_value = "fine", value_parser = parse::<Resolution>)]
    pub resolution: Resolution,

    /// Compression: g4 (T.6), mr (T.4 2D) or mh (T.4 1D).
    #[arg(long, value_name = "C", default_value = "g4", value_parser = parse::<Compression>)]
    pub compression: Compression,

    /// Paper, which sets the page width: a4, letter (1728 pixels), b4 (2048) or a3 (2432).
    #[arg(long, value_name = "PAPER", default_value = "a4", value_parser = parse::<Paper>)]
    pub paper: Paper,

    /// Dither grey levels (for photographs) instead of a plain black/white threshold.
    #[arg(long)]
    pub dither: bool,

    /// Keep landscape PDF pages landscape (scaled down to the paper width)
    /// instead of turning them a quarter turn to fill the page.
    #[arg(long)]
    pub keep_orientation: bool,
}

/// What faxsend adds to the pages: a cover page, a tag line.
#[derive(Args, Debug, Clone)]
pub struct ExtrasArgs {
    /// Send a cover page first: sender, recipient, date, page count, and
    /// --subject and --comment when given.
    #[arg(long)]
    pub cover: bool,

    /// The recipient's name, for the cover page.
    #[arg(long, value_name = "NAME")]
    pub to_name: Option<String>,

    /// The sender's name, for the cover page and the tag line.
    #[arg(long, value_name = "NAME")]
    pub from_name: Option<String>,

    /// The subject, for the cover page.
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// A comment for the cover page (wrapped to fit; \n starts a line).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// The line at the top of every page (needs --from) [default:
    /// "{date}|From: {sender}|Page {page} of {pages}"]. Fields: {date},
    /// {sender}, {name}, {number}, {to}, {to_name}, {page}, {pages}; `|`
    /// splits left, centre and right.
    #[arg(long, value_name = "FORMAT", value_parser = parse::<TagLineFormat>, conflicts_with = "no_tagline")]
    pub tagline: Option<TagLineFormat>,

    /// No tag line (it is drawn on every page whenever --from is given).
    #[arg(long)]
    pub no_tagline: bool,
}

impl EncodeArgs {
    /// The codec options these flags ask for.
    pub fn options(&self) -> EncodeOptions {
        EncodeOptions {
            resolution: self.resolution,
            compression: self.compression,
            paper: self.paper,
            dither: self.dither,
            keep_orientation: self.keep_orientation,
        }
    }
}

/// Parses a codec name with its own `FromStr`, keeping its helpful message.
fn parse<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

//! Command-line arguments of faxsend.

use std::path::PathBuf;

use clap::{Args, Parser};
use common::codec::{Compression, EncodeOptions, Paper, Resolution};

const EXAMPLES: &str = "\
Examples:
  Encode a letter and a scan into a fax file, without sending anything:
    faxsend letter.png scan.tif --output fax.tif

  Standard resolution, Group 3 2D (MR), dithered for a photograph:
    faxsend photo.jpg --resolution standard --compression mr --dither --output photo.tif

Exit codes: 0 done, 1 sending is not available yet, 2 bad input or usage.";

/// The sending fax device: turns images into fax pages and sends them.
#[derive(Parser, Debug)]
#[command(name = "faxsend", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Images to send, in order: PNG, JPEG, GIF, BMP, PNM or TIFF (every
    /// page of a multi-page TIFF, fax TIFFs included).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// How to encode the pages.
    #[command(flatten)]
    pub encode: EncodeArgs,

    /// Write the encoded fax to this TIFF Class F file instead of sending it.
    #[arg(long, value_name = "OUT.tif")]
    pub output: Option<PathBuf>,
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
}

impl EncodeArgs {
    /// The codec options these flags ask for.
    pub fn options(&self) -> EncodeOptions {
        EncodeOptions {
            resolution: self.resolution,
            compression: self.compression,
            paper: self.paper,
            dither: self.dither,
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

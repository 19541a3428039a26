//! faxsend's exit codes (documented in `--help` and the README; scripts rely
//! on them, so they never change meaning).

use common::device::send::Outcome;

pub const OK: u8 = 0;
pub const INTERNAL: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const NOT_AUTHORIZED: u8 = 4;
pub const UNKNOWN_NUMBER: u8 = 5;
pub const OFFLINE: u8 = 6;
pub const BUSY: u8 = 7;
pub const REJECTED: u8 = 8;
pub const PARTIAL: u8 = 9;
pub const TIMEOUT: u8 = 10;
pub const CUT: u8 = 11;
/// faxstat --wait: a job was canceled.
pub const CANCELED: u8 = 12;
/// faxstat: a job has not ended (without --wait).
pub const NOT_ENDED: u8 = 13;

/// The exit code for a call's outcome.
pub fn for_outcome(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Delivered => OK,
        Outcome::Partial => PARTIAL,
        Outcome::UnknownNumber => UNKNOWN_NUMBER,
        Outcome::Offline => OFFLINE,
        Outcome::Busy => BUSY,
        Outcome::Rejected => REJECTED,
        Outcome::NotAuthorized => NOT_AUTHORIZED,
        Outcome::Unreachable => UNREACHABLE,
        Outcome::Timeout => TIMEOUT,
        Outcome::LinkLost => CUT,
    }
}

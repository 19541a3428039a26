//! What a caller learns: how each attempt ended ([`Outcome`], [`Attempt`])
//! and the delivery report over all attempts of one fax, which faxsend prints.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::link::message::CallRefusal;
use crate::number::{CallId, Number};

/// How a call ended, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Partial,
    UnknownNumber,
    Offline,
    Busy,
    Rejected,
    NotAuthorized,
    Unreachable,
    Timeout,
    LinkLost,
}

impl From<CallRefusal> for Outcome {
    fn from(r: CallRefusal) -> Outcome {
        match r {
            CallRefusal::UnknownNumber => Outcome::UnknownNumber,
            CallRefusal::Offline => Outcome::Offline,
            CallRefusal::Busy => Outcome::Busy,
            CallRefusal::Rejected => Outcome::Rejected,
            CallRefusal::NotAuthorized => Outcome::NotAuthorized,
            CallRefusal::Unreachable => Outcome::Unreachable,
            // A hop's limit refuses this call as it is: like a rejection,
            // not worth retrying unchanged (the detail names the limit).
            CallRefusal::OverLimit => Outcome::Rejected,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Delivered => "delivered",
            Outcome::Partial => "partial delivery",
            Outcome::UnknownNumber => "unknown number",
            Outcome::Offline => "offline",
            Outcome::Busy => "busy",
            Outcome::Rejected => "rejected",
            Outcome::NotAuthorized => "not authorized",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::LinkLost => "link lost",
        })
    }
}

/// What faxsend prints when a call is over (after every attempt).
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryReport {
    pub result: Outcome,
    /// A sentence on why, when the call was not delivered.
    pub detail: String,
    pub call_id: CallId,
    pub from: Number,
    pub to: Number,
    pub pages_total: u32,
    /// Pages sent, over all attempts.
    pub pages_sent: u32,
    /// Pages the callee holds: confirmed on this attempt or an earlier one.
    pub pages_confirmed: u32,
    /// Bytes of page data sent, over all attempts.
    pub bytes_sent: u64,
    pub elapsed_ms: u64,
    /// Relays the (last) call went through, in order.
    pub via: Vec<String>,
    /// Every attempt, first to last.
    pub attempts: Vec<Attempt>,
}

/// One dialing of the callee.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub result: Outcome,
    pub detail: String,
    /// Pages the callee already held from an earlier attempt when it
    /// answered (`None`: it did not answer).
    pub pages_held: Option<u32>,
    /// Pages sent on this attempt.
    pub pages_sent: u32,
    /// Pages confirmed on this attempt.
    pub pages_confirmed: u32,
    pub bytes_sent: u64,
    pub elapsed_ms: u64,
    pub via: Vec<String>,
    /// Whether another attempt could go better (see [`Outcome::worth_retrying`]);
    /// false for final outcomes such as a page limit.
    #[serde(skip)]
    pub retryable: bool,
}

impl Attempt {
    /// An attempt that ended before reaching the callee (e.g. no login).
    pub fn failed(result: Outcome, detail: String, elapsed: Duration) -> Attempt {
        Attempt {
            result,
            detail,
            pages_held: None,
            pages_sent: 0,
            pages_confirmed: 0,
            bytes_sent: 0,
            elapsed_ms: elapsed.as_millis() as u64,
            via: Vec::new(),
            retryable: result.worth_retrying(),
        }
    }

    /// Pages on the callee's disk after this attempt, when it answered.
    pub fn pages_on_callee(&self) -> Option<u32> {
        self.pages_held.map(|held| held + self.pages_confirmed)
    }
}

impl Outcome {
    /// Whether redialing may help: the line was busy or down, or the call
    /// was cut. Unknown number, not authorized and rejected are final.
    pub fn worth_retrying(self) -> bool {
        match self {
            Outcome::Offline
            | Outcome::Busy
            | Outcome::Unreachable
            | Outcome::Timeout
            | Outcome::LinkLost
            | Outcome::Partial => true,
            Outcome::Delivered
            | Outcome::UnknownNumber
            | Outcome::Rejected
            | Outcome::NotAuthorized => false,
        }
    }
}

impl DeliveryReport {
    /// The report of a fax from its attempts (at least one), the last one
    /// deciding the result.
    pub fn from_attempts(
        call_id: CallId,
        from: Number,
        to: Number,
        pages_total: u32,
        attempts: Vec<Attempt>,
    ) -> DeliveryReport {
        let last = attempts.last();
        // What the callee holds is known from the last attempt it answered.
        let confirmed = attempts
            .iter()
            .rev()
            .find_map(Attempt::pages_on_callee)
            .unwrap_or(0);
        let mut result = last.map_or(Outcome::LinkLost, |a| a.result);
        if result == Outcome::LinkLost && confirmed > 0 {
            result = Outcome::Partial;
        }
        DeliveryReport {
            result,
            detail: last.map(|a| a.detail.clone()).unwrap_or_default(),
            call_id,
            from,
            to,
            pages_total,
            pages_sent: attempts.iter().map(|a| a.pages_sent).sum(),
            pages_confirmed: confirmed,
            bytes_sent: attempts.iter().map(|a| a.bytes_sent).sum(),
            elapsed_ms: attempts.iter().map(|a| a.elapsed_ms).sum(),
            via: last.map(|a| a.via.clone()).unwrap_or_default(),
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(result: Outcome, held: Option<u32>, sent: u32, confirmed: u32) -> Attempt {
        Attempt {
            pages_held: held,
            pages_sent: sent,
            pages_confirmed: confirmed,
            bytes_sent: u64::from(sent) * 100,
            ..Attempt::failed(result, format!("{result}"), Duration::from_millis(10))
        }
    }

    fn report(attempts: Vec<Attempt>) -> DeliveryReport {
        let n = |s: &str| s.parse::<Number>().expect("a number");
        DeliveryReport::from_attempts(CallId::random(), n("1001"), n("1002"), 5, attempts)
    }

    #[test]
    fn a_resumed_fax_counts_pages_from_every_attempt() {
        let r = report(vec![
            attempt(Outcome::Partial, Some(0), 5, 2),
            attempt(Outcome::Busy, None, 0, 0),
            attempt(Outcome::Delivered, Some(2), 3, 3),
        ]);
        assert_eq!(r.result, Outcome::Delivered);
        assert_eq!((r.pages_sent, r.pages_confirmed, r.bytes_sent), (8, 5, 800));
        assert_eq!(r.elapsed_ms, 30);
        assert_eq!(r.attempts.len(), 3);
    }

    #[test]
    fn the_last_attempt_decides_and_pages_already_held_make_a_cut_partial() {
        // Refused after a partial attempt: still refused, the pages still there.
        let r = report(vec![
            attempt(Outcome::Partial, Some(0), 5, 2),
            attempt(Outcome::Offline, None, 0, 0),
        ]);
        assert_eq!((r.result, r.pages_confirmed), (Outcome::Offline, 2));
        // Cut before a page of this attempt, but the callee kept two.
        let r = report(vec![attempt(Outcome::LinkLost, Some(2), 3, 0)]);
        assert_eq!((r.result, r.pages_confirmed), (Outcome::Partial, 2));
        let r = report(vec![attempt(Outcome::LinkLost, Some(0), 5, 0)]);
        assert_eq!((r.result, r.pages_confirmed), (Outcome::LinkLost, 0));
    }

    #[test]
    fn final_outcomes_are_not_worth_retrying() {
        let retry: Vec<bool> = [
            Outcome::Offline,
            Outcome::Busy,
            Outcome::Unreachable,
            Outcome::Timeout,
            Outcome::LinkLost,
            Outcome::Partial,
            Outcome::Delivered,
            Outcome::UnknownNumber,
            Outcome::Rejected,
            Outcome::NotAuthorized,
        ]
        .map(Outcome::worth_retrying)
        .into();
        assert_eq!(
            retry,
            [
                true, true, true, true, true, true, false, false, false, false
            ]
        );
    }
}

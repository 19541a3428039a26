//! The gateway's view of its one relay link: the link in use (if any), and
//! the device logins waiting for the relay's answer. The task that keeps the
//! link up is `relay_link`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use common::link::actor::LinkHandle;
use common::link::message::{Control, CredentialOutcome, Login, LoginOutcome, LoginRefusal};
use common::number::{CallId, Number};
use tokio::sync::{Notify, oneshot, watch};

/// Forgets the waiters of a number that gave up, when a login ends.
struct ForgetOnDrop<'a> {
    uplink: &'a Uplink,
    number: Number,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.uplink.forget_abandoned(&self.number);
    }
}

/// The relay link in use.
#[derive(Clone, Debug)]
pub struct RelayHandle {
    pub name: String,
    pub addr: String,
    /// The link's outbox and call-stream opener.
    pub link: LinkHandle,
}

/// Shared view of the relay link and the logins waiting for an answer.
#[derive(Debug)]
pub struct Uplink {
    pub(crate) current: watch::Sender<Option<RelayHandle>>,
    pending: Mutex<HashMap<Number, Vec<oneshot::Sender<LoginOutcome>>>>,
    /// Job credentials asked for, by job call id.
    credentials: Mutex<HashMap<CallId, oneshot::Sender<CredentialOutcome>>>,
    /// Wakes a backoff pause when a reload changed the relay list.
    pub(crate) relays_changed: Notify,
}

impl Default for Uplink {
    fn default() -> Self {
        Uplink {
            current: watch::channel(None).0,
            pending: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            relays_changed: Notify::new(),
        }
    }
}

impl Uplink {
    /// A reload changed the relay list: try the new list without waiting
    /// out the backoff.
    pub fn relays_changed(&self) {
        self.relays_changed.notify_one();
    }

    pub fn current(&self) -> Option<RelayHandle> {
        self.current.borrow().clone()
    }

    /// Forwards a device's login to the relay and waits for the answer,
    /// waiting up to `wait` for a relay link if there is none yet.
    pub async fn login(&self, login: Login, wait: Duration) -> LoginOutcome {
        let no_relay = LoginOutcome::Refused(LoginRefusal::NoRelay);
        let mut rx = self.current.subscribe();
        let Ok(Ok(handle)) = tokio::time::timeout(wait, async {
            rx.wait_for(|h| h.is_some())
                .await
                .map(|h| h.clone().unwrap_or_else(|| unreachable!("waited for Some")))
        })
        .await
        else {
            return no_relay;
        };
        // However this ends (answered, timed out, or dropped because the
        // device's link closed first), a waiter that gave up is forgotten, so
        // a relay that never answers cannot make the waiting list grow.
        // Declared before the receiver, so it runs after the receiver is gone.
        let _forget = ForgetOnDrop {
            uplink: self,
            number: login.number.clone(),
        };
        let (tx, result) = oneshot::channel();
        self.pending_lock()
            .entry(login.number.clone())
            .or_default()
            .push(tx);
        if handle.link.send(Control::Login(login)).await.is_err() {
            return no_relay;
        }
        tokio::time::timeout(wait, result)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(no_relay)
    }

    /// Asks the relay for the credential of queued job `call_id` of
    /// `number` (logged in on this gateway), valid until `expires_unix`.
    pub async fn job_credential(
        &self,
        number: &Number,
        call_id: &CallId,
        expires_unix: u64,
        wait: Duration,
    ) -> Result<String, String> {
        let relay = self
            .current()
            .ok_or("the gateway has no relay link to authorize the job")?;
        let (tx, rx) = oneshot::channel();
        self.credentials_lock().insert(call_id.clone(), tx);
        let ask = Control::IssueJobCredential {
            number: number.clone(),
            call_id: call_id.clone(),
            expires_unix,
        };
        let answer = match relay.link.send(ask).await {
            Err(_) => Err("the relay link went down".to_owned()),
            Ok(()) => match tokio::time::timeout(wait, rx).await {
                Ok(Ok(CredentialOutcome::Issued { credential })) => Ok(credential),
                Ok(Ok(CredentialOutcome::Refused { reason })) => Err(reason),
                Ok(Err(_)) | Err(_) => Err("the relay did not answer".to_owned()),
            },
        };
        self.credentials_lock().remove(call_id);
        answer.map_err(|e| format!("the relay issued no credential for the job: {e}"))
    }

    fn credentials_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<CallId, oneshot::Sender<CredentialOutcome>>> {
        // Plain map: still consistent after a panic elsewhere.
        self.credentials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers a relay's answer to a credential request.
    pub(crate) fn credential_answered(&self, call_id: &CallId, outcome: CredentialOutcome) {
        let waiter = self.credentials_lock().remove(call_id);
        if let Some(w) = waiter {
            let _ = w.send(outcome);
        }
    }

    /// Drops the waiters of `number` that gave up.
    fn forget_abandoned(&self, number: &Number) {
        let mut pending = self.pending_lock();
        if let Some(waiters) = pending.get_mut(number) {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                pending.remove(number);
            }
        }
    }

    fn pending_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Number, Vec<oneshot::Sender<LoginOutcome>>>> {
        // Plain map: still consistent after a panic elsewhere.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers a relay's answer; returns false when nobody was waiting (a
    /// replayed login after a reconnect).
    pub(crate) fn resolve(&self, number: &Number, outcome: &LoginOutcome) -> bool {
        let waiters = self.pending_lock().remove(number).unwrap_or_default();
        let any = !waiters.is_empty();
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::link::actor::Mailbox;
    use common::link::mux::{self, Side};
    use tokio_util::compat::TokioAsyncReadCompatExt;

    /// An uplink with a relay link whose far end never answers: what the
    /// relay would hear, and the far end of the connection (kept open).
    fn linked() -> (Uplink, Mailbox, tokio::io::DuplexStream) {
        let uplink = Uplink::default();
        let (io, far) = tokio::io::duplex(1024);
        let (opener, _inbound) = mux::start(io.compat(), Side::Dialer, 8);
        let (link, relay_hears) = LinkHandle::new(opener, 4);
        uplink.current.send_replace(Some(RelayHandle {
            name: "relay-a".into(),
            addr: "relay-a:4710".into(),
            link,
        }));
        (uplink, relay_hears, far)
    }

    fn login_1002() -> Login {
        Login {
            number: "1002".parse().expect("a number"),
            secret: "secret".into(),
            receive: None,
        }
    }

    #[tokio::test]
    async fn a_login_the_relay_never_answers_is_not_kept_waiting() {
        let (uplink, mut relay_hears, _far) = linked();
        let login = login_1002();

        let outcome = uplink.login(login, Duration::from_millis(20)).await;

        assert!(
            matches!(outcome, LoginOutcome::Refused(LoginRefusal::NoRelay)),
            "{outcome:?}"
        );
        assert!(matches!(relay_hears.recv().await, Some(Control::Login(_))));
        assert!(uplink.pending_lock().is_empty(), "a waiter was kept");
    }

    #[tokio::test]
    async fn a_login_whose_device_left_before_the_answer_is_not_kept_waiting() {
        let (uplink, mut relay_hears, _far) = linked();
        let login = login_1002();
        let mut waiting = Box::pin(uplink.login(login, Duration::from_secs(60)));

        // The login goes up; then the device's link closes, dropping the wait.
        tokio::select! {
            _ = &mut waiting => panic!("nobody answered"),
            heard = relay_hears.recv() => assert!(matches!(heard, Some(Control::Login(_)))),
        }
        assert_eq!(uplink.pending_lock().len(), 1);
        drop(waiting);

        assert!(uplink.pending_lock().is_empty(), "a waiter was kept");
    }
}

//! The ESMTP server as a state machine without I/O: gatewayd reads lines
//! from the socket, hands each to [`Session::feed`] (or
//! [`Session::feed_ending`], which also knows whether the line ended in a
//! bare LF) and writes or acts on the [`Action`] that comes back; it also
//! does TLS, line limits and timeouts.
//! The decisions that need the gateway's state (who may send, to which
//! numbers, whose password) go through the [`Policy`] the caller passes in.
//!
//! Protocol flow (RFC 5321 3.3, with RFC 3207 STARTTLS and RFC 4954 AUTH):
//!
//! 1. The server greets (220); the client says EHLO (or HELO).
//! 2. Optionally STARTTLS: the caller does the handshake, then the client
//!    says EHLO again; only now is AUTH offered and accepted.
//! 3. A transaction: MAIL FROM, one or more RCPT TO, DATA, the message lines
//!    and a line ".": the caller gets the [`Envelope`] and answers it.
//! 4. More transactions, or QUIT.
//!
//! Line limits are the caller's: RFC 5321 4.5.3.1 asks to take command
//! lines of 512 octets and text lines of 1000 at least, and RFC 4954 4 AUTH
//! lines of 12288 (a PLAIN initial response is on the AUTH line), so 12288
//! is the simple limit outside DATA.
//!
//! Files: `reply` (the wire form of a reply), `command` (verbs, paths and
//! parameters), `auth` (SASL PLAIN and LOGIN), `session` (the state machine).

mod auth;
mod command;
mod reply;
mod session;

#[cfg(test)]
mod tests;

pub use reply::Reply;
pub use session::Session;

/// What a session offers and allows.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our name, in the 220 greeting and the EHLO reply.
    pub hostname: String,
    /// The largest message we take, advertised as SIZE (RFC 1870); a larger
    /// one is refused with 552 5.3.4.
    pub max_message_bytes: usize,
    /// Recipients per transaction; one more gets 452 4.5.3.
    pub max_recipients: usize,
    /// Whether STARTTLS is offered (only before TLS, of course).
    pub tls_available: bool,
    /// Whether AUTH PLAIN LOGIN is offered; it is offered and accepted only
    /// under TLS, as the passwords go in the clear.
    pub auth_available: bool,
    /// After this many bad commands the session ends with 421 (0 and 1
    /// both mean at the first).
    pub max_errors: u32,
}

/// The policy's answer to a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Accepted,
    /// Wrong user or password: 535, and the client may try again.
    Rejected,
    /// Too many failures from this client or for this user: 421 and close.
    Throttled {
        retry_after_secs: u64,
    },
}

/// What the session knows when it asks the policy.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The EHLO or HELO argument.
    pub helo: &'a str,
    /// Whether the connection is under TLS.
    pub tls: bool,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    /// The reverse path of the open transaction ("" for the null sender);
    /// `None` when asking about the sender itself.
    pub sender: Option<&'a str>,
}

/// The gateway's decisions, asked by the session while it runs. A
/// password is not checked here but by the caller ([`Action::Authenticate`]):
/// a password hash takes milliseconds on purpose, which a caller may want
/// to spend off its async threads.
pub trait Policy {
    /// MAIL FROM (reverse path without <>, "" for the null sender). Err:
    /// the reply to send (e.g. 530 5.7.0 auth required, 550 5.7.1 not
    /// allowed).
    fn sender(&mut self, ctx: &Ctx<'_>, reverse_path: &str) -> Result<(), Reply>;
    /// RCPT TO (forward path without <>). Err: the reply (e.g. 550 5.1.1,
    /// 550 5.7.1).
    fn recipient(&mut self, ctx: &Ctx<'_>, forward_path: &str) -> Result<(), Reply>;
}

/// A received message with its envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path, "" for the null sender (a bounce).
    pub sender: String,
    /// The accepted forward paths, in order, without duplicates; never empty.
    pub recipients: Vec<String>,
    /// The authenticated user.
    pub user: Option<String>,
    /// The EHLO or HELO argument.
    pub helo: String,
    pub tls: bool,
    /// The message, dot-unstuffed, lines ending CRLF, without the final "."
    /// line. Any bytes: 8BITMIME is offered and nothing is assumed UTF-8.
    pub body: Vec<u8>,
}

/// The body can be large: Debug shows its length only.
impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("sender", &self.sender)
            .field("recipients", &self.recipients)
            .field("user", &self.user)
            .field("helo", &self.helo)
            .field("tls", &self.tls)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// How a line ended on the wire, for [`Session::feed_ending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    CrLf,
    /// A LF without the CR before it (RFC 5321 2.3.8 forbids it; clients
    /// send it anyway).
    BareLf,
}

/// What the caller does after feeding a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the reply and read on.
    Reply(Reply),
    /// Write the reply, then close (QUIT, too many errors, throttled AUTH).
    Close(Reply),
    /// Write this 220, then DISCARD anything already read after the
    /// STARTTLS line: a client (or a man in the middle) may have pipelined
    /// commands in the clear that must not count as sent under TLS
    /// (CVE-2011-0411, RFC 3207 5). Then do the handshake and call
    /// [`Session::tls_started`]; if it fails, close.
    StartTls(Reply),
    /// The end of DATA: queue the message and write your own reply (250, or
    /// 4xx/5xx). The session is already back in command state with the
    /// transaction reset.
    Message(Envelope),
    /// AUTH gave these credentials: check them, then call
    /// [`Session::auth_verdict`] and act on what it returns.
    Authenticate(Credentials),
    /// Nothing to write (a DATA line was taken).
    None,
}

/// A login to check. Debug never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

//! One SMTP connection's state: which commands are allowed now, the open
//! transaction, the AUTH exchange and the DATA being read. Lines in, actions
//! out; no I/O, no clock.

use std::fmt;
use std::mem;

use super::auth::{self, Mechanism, Response};
use super::command::{self, Verb};
use super::{Action, AuthVerdict, Config, Credentials, Ctx, Envelope, LineEnding, Policy, Reply};

/// A server-side SMTP session. See the module documentation for the flow.
pub struct Session {
    config: Config,
    phase: Phase,
    /// The EHLO/HELO argument; `None` until the client sends one, and again
    /// after STARTTLS.
    helo: Option<String>,
    tls: bool,
    user: Option<String>,
    /// Open from an accepted MAIL until the end of DATA, RSET, EHLO/HELO or
    /// STARTTLS. During DATA it lives in [`Phase::Data`].
    transaction: Option<Transaction>,
    /// Bad commands so far; never reset (a client cannot earn more tries
    /// by sending a good one in between).
    errors: u32,
}

/// What the next line is.
enum Phase {
    Command,
    Data(Data),
    /// After `AUTH PLAIN` and `334 `: the PLAIN message.
    AuthPlain,
    /// After `AUTH LOGIN` and the Username challenge.
    AuthLoginUser,
    /// After the Password challenge.
    AuthLoginPassword {
        user: String,
    },
    /// StartTls was returned: the caller must do the handshake, not feed.
    AwaitingTls,
    /// Authenticate was returned: the caller must give its verdict, not feed.
    AwaitingVerdict {
        user: String,
    },
    /// Close was returned.
    Closed,
}

#[derive(Debug)]
struct Transaction {
    sender: String,
    recipients: Vec<String>,
}

/// A message being read.
struct Data {
    transaction: Transaction,
    /// Empty once the message is refused anyway (too big, a line too long):
    /// we read on to the final "." but keep nothing.
    body: Vec<u8>,
    /// Bytes received so far, as they will be in the body.
    size: usize,
    too_big: bool,
    line_too_long: bool,
    /// Whether the last line ended in a bare LF.
    after_bare_lf: bool,
}

impl Session {
    pub fn new(config: Config) -> Session {
        Session {
            config,
            phase: Phase::Command,
            helo: None,
            tls: false,
            user: None,
            transaction: None,
            errors: 0,
        }
    }

    /// The 220 greeting to write when the connection opens. (No enhanced
    /// code: RFC 2034 3 leaves them out of the greeting and the EHLO and
    /// HELO replies.)
    pub fn greeting(&self) -> Reply {
        Reply::new(220, "", format!("{} ESMTP faxmesh", self.config.hostname))
    }

    /// Takes one line without its line ending (CRLF, or a bare LF), in any
    /// state: a command, an AUTH response or a DATA line. The same as
    /// [`feed_ending`](Self::feed_ending) with [`LineEnding::CrLf`].
    pub fn feed<P: Policy + ?Sized>(&mut self, line: &[u8], policy: &mut P) -> Action {
        self.feed_ending(line, LineEnding::CrLf, policy)
    }

    /// Like [`feed`](Self::feed), told how the line ended. Only DATA cares:
    /// the message ends at CRLF "." CRLF only, so that a "." next to a bare
    /// LF cannot end it early and have the rest read as commands (SMTP
    /// smuggling, CVE-2023-51764).
    pub fn feed_ending<P: Policy + ?Sized>(
        &mut self,
        line: &[u8],
        ending: LineEnding,
        policy: &mut P,
    ) -> Action {
        // Each arm puts back the phase it leaves the session in.
        match mem::replace(&mut self.phase, Phase::Command) {
            Phase::Command => self.command(line, policy),
            Phase::Data(data) => self.data_line(data, line, ending),
            Phase::AuthPlain => self.plain_response(line),
            Phase::AuthLoginUser => self.login_user(line),
            Phase::AuthLoginPassword { user } => self.login_password(&user, line),
            Phase::AwaitingTls => self.close(Reply::new(421, "4.7.0", "TLS handshake expected")),
            Phase::AwaitingVerdict { .. } => {
                self.close(Reply::new(421, "4.7.0", "Login being checked"))
            }
            Phase::Closed => self.close(Reply::new(421, "4.7.0", "Connection closed")),
        }
    }

    /// The caller's verdict on the credentials of [`Action::Authenticate`]:
    /// 235, 535 (a counted error), or 421 and the end when throttled.
    pub fn auth_verdict(&mut self, verdict: AuthVerdict) -> Action {
        let Phase::AwaitingVerdict { user } = mem::replace(&mut self.phase, Phase::Command) else {
            return self.close(Reply::new(421, "4.7.0", "No login to check"));
        };
        match verdict {
            AuthVerdict::Accepted => {
                self.user = Some(user);
                Action::Reply(Reply::new(235, "2.7.0", "Authentication successful"))
            }
            AuthVerdict::Rejected => self.error(auth::invalid_credentials()),
            AuthVerdict::Throttled { retry_after_secs } => self.close(Reply::new(
                421,
                "4.7.0",
                format!("Too many failed logins; try again in {retry_after_secs} seconds"),
            )),
        }
    }

    /// The caller read a line longer than its limit and threw it away. A
    /// command gets 500 (and an AUTH exchange ends); in DATA the message is
    /// refused at its final ".".
    pub fn overlong(&mut self) -> Action {
        match mem::replace(&mut self.phase, Phase::Command) {
            Phase::Data(mut data) => {
                data.line_too_long = true;
                data.body = Vec::new();
                self.phase = Phase::Data(data);
                Action::None
            }
            Phase::Command
            | Phase::AuthPlain
            | Phase::AuthLoginUser
            | Phase::AuthLoginPassword { .. } => {
                self.error(Reply::new(500, "5.5.2", "Line too long"))
            }
            Phase::AwaitingTls => self.close(Reply::new(421, "4.7.0", "TLS handshake expected")),
            Phase::AwaitingVerdict { .. } => {
                self.close(Reply::new(421, "4.7.0", "Login being checked"))
            }
            Phase::Closed => self.close(Reply::new(421, "4.7.0", "Connection closed")),
        }
    }

    /// Whether the session is reading message lines (the caller allows
    /// longer lines and waits longer, RFC 5321 4.5.3.2).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_))
    }

    /// The TLS handshake succeeded. RFC 3207 4.2: everything learnt before
    /// is forgotten (EHLO, any transaction); the client starts over with
    /// EHLO. Also what a listener with implicit TLS (RFC 8314) calls before
    /// the greeting.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.transaction = None;
        if !matches!(self.phase, Phase::Closed) {
            self.phase = Phase::Command;
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The authenticated user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn command<P: Policy + ?Sized>(&mut self, line: &[u8], policy: &mut P) -> Action {
        let (verb, arg) = command::split(line);
        match verb {
            Verb::Ehlo => self.ehlo(arg, true),
            Verb::Helo => self.ehlo(arg, false),
            Verb::Mail => self.mail(arg, policy),
            Verb::Rcpt => self.rcpt(arg, policy),
            Verb::Data => self.data(arg),
            Verb::Rset if arg.is_empty() => {
                self.transaction = None;
                Action::Reply(Reply::new(250, "2.0.0", "OK"))
            }
            Verb::Rset => self.error(Reply::new(501, "5.5.4", "RSET takes no argument")),
            Verb::Noop => Action::Reply(Reply::new(250, "2.0.0", "OK")),
            Verb::Quit => self.close(Reply::new(221, "2.0.0", "Bye")),
            Verb::Vrfy if arg.is_empty() => {
                self.error(Reply::new(501, "5.5.4", "Syntax: VRFY address"))
            }
            // RFC 5321 3.5.3: we neither confirm nor deny addresses.
            Verb::Vrfy => Action::Reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Verb::Expn => self.error(Reply::new(502, "5.5.1", "EXPN not available")),
            Verb::Help => Action::Reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            )),
            Verb::StartTls => self.starttls(arg),
            Verb::Auth => self.auth(arg),
            Verb::Unsupported => self.error(Reply::new(502, "5.5.1", "Command not implemented")),
            Verb::Http => self.close(Reply::new(421, "4.7.0", "This is an SMTP server")),
            Verb::Unknown if command::trim(line).is_empty() => {
                self.error(Reply::new(500, "5.5.2", "Empty command"))
            }
            Verb::Unknown => self.error(Reply::new(500, "5.5.1", "Command unrecognized")),
        }
    }

    /// EHLO (`extended`) or HELO. Either resets the transaction (RFC 5321
    /// 4.1.4); the EHLO reply lists our extensions (4.1.1.1).
    fn ehlo(&mut self, arg: &[u8], extended: bool) -> Action {
        // We do not check that the name is a domain (clients send all
        // sorts), only that it is printable text we can log and pass on.
        let name = std::str::from_utf8(arg)
            .ok()
            .filter(|name| !name.is_empty() && !name.chars().any(char::is_control));
        let Some(name) = name else {
            let verb = if extended { "EHLO" } else { "HELO" };
            return self.error(Reply::new(501, "5.5.4", format!("Syntax: {verb} hostname")));
        };
        self.helo = Some(name.to_owned());
        self.transaction = None;
        let hostname = self.config.hostname.clone();
        if !extended {
            return Action::Reply(Reply::new(250, "", hostname));
        }
        let mut reply = Reply::new(250, "", hostname)
            .with_line("8BITMIME")
            .with_line(format!("SIZE {}", self.config.max_message_bytes))
            .with_line("ENHANCEDSTATUSCODES")
            // Safe because the caller feeds lines one by one and writes each
            // reply before the next: a pipelined batch is just more lines.
            .with_line("PIPELINING");
        if self.config.tls_available && !self.tls {
            reply = reply.with_line("STARTTLS");
        }
        // Not before TLS: PLAIN and LOGIN send the password in the clear
        // (RFC 4954 4, and it keeps clients from trying).
        if self.config.auth_available && self.tls {
            reply = reply.with_line("AUTH PLAIN LOGIN");
        }
        Action::Reply(reply)
    }

    fn mail<P: Policy + ?Sized>(&mut self, arg: &[u8], policy: &mut P) -> Action {
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if self.transaction.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        let sender = match command::mail_from(arg, self.config.max_message_bytes) {
            Ok(sender) => sender,
            Err(reply) => return self.refuse_argument(reply),
        };
        let ctx = Ctx {
            helo: self.helo.as_deref().unwrap_or(""),
            tls: self.tls,
            user: self.user.as_deref(),
            sender: None,
        };
        if let Err(reply) = policy.sender(&ctx, &sender) {
            return Action::Reply(reply);
        }
        self.transaction = Some(Transaction {
            sender,
            recipients: Vec::new(),
        });
        Action::Reply(Reply::new(250, "2.1.0", "Sender OK"))
    }

    fn rcpt<P: Policy + ?Sized>(&mut self, arg: &[u8], policy: &mut P) -> Action {
        let need_mail = || Reply::new(503, "5.5.1", "Need MAIL command");
        if self.transaction.is_none() {
            return self.error(need_mail());
        }
        let recipient = match command::rcpt_to(arg) {
            Ok(recipient) => recipient,
            Err(reply) => return self.refuse_argument(reply),
        };
        // Still open: parsing changed nothing (the check above comes first
        // so that RCPT before MAIL is a 503 whatever its argument).
        let Some(transaction) = self.transaction.as_mut() else {
            return self.error(need_mail());
        };
        // The same number twice would be faxed twice.
        if transaction.recipients.contains(&recipient) {
            return Action::Reply(Reply::new(250, "2.1.5", "Recipient OK"));
        }
        // RFC 5321 4.5.3.1.10: a 452 makes the client send the rest in
        // another transaction.
        if transaction.recipients.len() >= self.config.max_recipients {
            return Action::Reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        let ctx = Ctx {
            helo: self.helo.as_deref().unwrap_or(""),
            tls: self.tls,
            user: self.user.as_deref(),
            sender: Some(&transaction.sender),
        };
        if let Err(reply) = policy.recipient(&ctx, &recipient) {
            return Action::Reply(reply);
        }
        transaction.recipients.push(recipient);
        Action::Reply(Reply::new(250, "2.1.5", "Recipient OK"))
    }

    fn data(&mut self, arg: &[u8]) -> Action {
        let transaction = match self.transaction.take() {
            None => return self.error(Reply::new(503, "5.5.1", "Need MAIL command")),
            Some(transaction) => transaction,
        };
        // RFC 5321 3.3: DATA after no accepted RCPT gets 503 or 554; the
        // transaction stays open (the client may RSET or try more RCPT).
        let refusal = if transaction.recipients.is_empty() {
            Some(Reply::new(554, "5.5.1", "No valid recipients"))
        } else if !arg.is_empty() {
            Some(Reply::new(501, "5.5.4", "DATA takes no argument"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.transaction = Some(transaction);
            return self.error(reply);
        }
        self.phase = Phase::Data(Data {
            transaction,
            body: Vec::new(),
            size: 0,
            too_big: false,
            line_too_long: false,
            after_bare_lf: false,
        });
        Action::Reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"))
    }

    fn data_line(&mut self, mut data: Data, line: &[u8], ending: LineEnding) -> Action {
        let bare_lf = ending == LineEnding::BareLf;
        let line = if line == b"." {
            // RFC 5321 4.1.1.4: the end is CRLF "." CRLF. A "." with a bare
            // LF before or after it is content, kept as it is (Postfix's
            // smtpd_forbid_bare_newline = normalize): a relay before us that
            // passed "\n.\n" on as content must not see us end the message
            // there and take what follows as new commands.
            if !bare_lf && !data.after_bare_lf {
                return self.end_of_data(data);
            }
            line
        } else {
            // RFC 5321 4.5.2: the client doubled a leading dot; take one away.
            line.strip_prefix(b".").unwrap_or(line)
        };
        data.after_bare_lf = bare_lf;
        data.size = data.size.saturating_add(line.len() + 2);
        if data.size > self.config.max_message_bytes && !data.too_big {
            // Read on to the "." (the client sends it all anyway, RFC 1870
            // 6.3) but keep nothing.
            data.too_big = true;
            data.body = Vec::new();
        }
        if !data.too_big && !data.line_too_long {
            data.body.extend_from_slice(line);
            data.body.extend_from_slice(b"\r\n");
        }
        self.phase = Phase::Data(data);
        Action::None
    }

    /// The final ".": the message, or the reply refusing it. Either way the
    /// transaction is over and the session reads commands again.
    fn end_of_data(&mut self, data: Data) -> Action {
        if data.too_big {
            return Action::Reply(command::too_big());
        }
        if data.line_too_long {
            return Action::Reply(Reply::new(500, "5.5.2", "Line too long"));
        }
        Action::Message(Envelope {
            sender: data.transaction.sender,
            recipients: data.transaction.recipients,
            user: self.user.clone(),
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls,
            body: data.body,
        })
    }

    fn starttls(&mut self, arg: &[u8]) -> Action {
        // RFC 3207 4: 503 when TLS is already on; 502 when we do not offer it.
        if self.tls {
            return self.error(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if !self.config.tls_available {
            return self.error(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        if !arg.is_empty() {
            return self.error(Reply::new(501, "5.5.4", "STARTTLS takes no argument"));
        }
        self.helo = None;
        self.transaction = None;
        self.phase = Phase::AwaitingTls;
        Action::StartTls(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }

    fn auth(&mut self, arg: &[u8]) -> Action {
        if !self.config.auth_available {
            return self.error(Reply::new(502, "5.5.1", "AUTH not available"));
        }
        // RFC 4954 6 (538): PLAIN and LOGIN only under TLS.
        if !self.tls {
            return self.error(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
        }
        // RFC 4954 4: AUTH is an extension (EHLO first), once per session,
        // and not in a transaction.
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.user.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if self.transaction.is_some() {
            return self.error(Reply::new(
                503,
                "5.5.1",
                "AUTH not permitted during a mail transaction",
            ));
        }
        let (name, initial) = match arg.iter().position(|&b| b == b' ') {
            Some(i) => (&arg[..i], Some(command::trim(&arg[i + 1..]))),
            None => (arg, None),
        };
        if name.is_empty() {
            return self.error(Reply::new(501, "5.5.4", "Syntax: AUTH mechanism"));
        }
        let mechanism = match Mechanism::parse(name) {
            Ok(mechanism) => mechanism,
            Err(reply) => return self.error(reply),
        };
        match (mechanism, initial) {
            (Mechanism::Plain, None) => {
                self.phase = Phase::AuthPlain;
                Action::Reply(Reply::new(334, "", ""))
            }
            (Mechanism::Plain, Some(response)) => self.plain_response(response),
            (Mechanism::Login, None) => {
                self.phase = Phase::AuthLoginUser;
                Action::Reply(Reply::new(334, "", auth::LOGIN_USERNAME))
            }
            (Mechanism::Login, Some(response)) => self.login_user(response),
        }
    }

    fn plain_response(&mut self, line: &[u8]) -> Action {
        let message = match auth::response(line) {
            Ok(Response::Data(message)) => message,
            Ok(Response::Cancel) => return self.error(auth::cancelled()),
            Err(reply) => return self.error(reply),
        };
        match auth::plain(&message) {
            Ok((user, password)) => self.authenticate(user, password),
            Err(reply) => self.error(reply),
        }
    }

    fn login_user(&mut self, line: &[u8]) -> Action {
        let user = match auth::response(line).and_then(|response| match response {
            Response::Data(bytes) => auth::login_text(bytes),
            Response::Cancel => Err(auth::cancelled()),
        }) {
            Ok(user) => user,
            Err(reply) => return self.error(reply),
        };
        self.phase = Phase::AuthLoginPassword { user };
        Action::Reply(Reply::new(334, "", auth::LOGIN_PASSWORD))
    }

    fn login_password(&mut self, user: &str, line: &[u8]) -> Action {
        let password = match auth::response(line).and_then(|response| match response {
            Response::Data(bytes) => auth::login_text(bytes),
            Response::Cancel => Err(auth::cancelled()),
        }) {
            Ok(password) => password,
            Err(reply) => return self.error(reply),
        };
        self.authenticate(user, &password)
    }

    /// Hands the credentials to the caller ([`Session::auth_verdict`] goes on).
    fn authenticate(&mut self, user: &str, password: &str) -> Action {
        self.phase = Phase::AwaitingVerdict {
            user: user.to_owned(),
        };
        Action::Authenticate(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// A MAIL or RCPT argument we refuse: a syntax error, except a declared
    /// SIZE over our limit, which is a fair question with a "no" answer.
    fn refuse_argument(&mut self, reply: Reply) -> Action {
        if reply.code() == 552 {
            Action::Reply(reply)
        } else {
            self.error(reply)
        }
    }

    /// A bad command (syntax, sequence, refused AUTH): its reply, or 421 and
    /// the end when there were too many.
    fn error(&mut self, reply: Reply) -> Action {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.config.max_errors {
            return self.close(Reply::new(421, "4.7.0", "Too many errors"));
        }
        Action::Reply(reply)
    }

    fn close(&mut self, reply: Reply) -> Action {
        self.phase = Phase::Closed;
        Action::Close(reply)
    }
}

/// No credentials: a LOGIN username waiting for its password is not shown
/// (passwords are never kept at all), nor is a message body.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("helo", &self.helo)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("transaction", &self.transaction)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Command => f.write_str("Command"),
            Phase::Data(data) => f
                .debug_struct("Data")
                .field("transaction", &data.transaction)
                .field("size", &data.size)
                .field("too_big", &data.too_big)
                .field("line_too_long", &data.line_too_long)
                .finish_non_exhaustive(),
            Phase::AuthPlain => f.write_str("AuthPlain"),
            Phase::AuthLoginUser => f.write_str("AuthLoginUser"),
            Phase::AuthLoginPassword { .. } => f.write_str("AuthLoginPassword"),
            Phase::AwaitingTls => f.write_str("AwaitingTls"),
            Phase::AwaitingVerdict { .. } => f.write_str("AwaitingVerdict"),
            Phase::Closed => f.write_str("Closed"),
        }
    }
}

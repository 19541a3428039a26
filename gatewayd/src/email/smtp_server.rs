//! The SMTP listener's sockets: one task per connection reads lines (with
//! length limits and timeouts), feeds them to a [`mail::smtp::Session`],
//! and carries out what it answers: replies (held back while the client
//! pipelines more commands), STARTTLS (rustls; whatever the client sent
//! after the STARTTLS line in clear is thrown away), passwords checked off
//! the async thread under a per-address throttle, and messages handed to
//! [`super::submit`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mail::smtp::{Action, AuthVerdict, Config, Credentials, LineEnding, Reply, Session};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::Mail;
use super::policy::{MailPolicy, sender_for};
use crate::gateway::Gateway;

/// Longest wait for a command, and for each line of a message (RFC 5321
/// 4.5.3.2 asks for at least 5 and 3 minutes).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
const DATA_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest command line: RFC 4954 4 lets an AUTH line reach 12288 octets.
const MAX_COMMAND_LINE: usize = 12_288;
/// Longest line of a message. RFC 5321 says 1000, but clients send longer
/// ones; the message's size cap bounds memory either way.
const MAX_DATA_LINE: usize = 1 << 20;
/// Connections served at once; one more is told 421 and closed. Each may
/// hold a message of up to `smtp_max_message_bytes` in memory while it is
/// read, so this also bounds the memory mail can take (32 x 25 MiB).
pub const MAX_CONNECTIONS: usize = 32;
/// Bad commands before a session is closed.
const MAX_ERRORS: u32 = 10;

/// Accepts connections until the gateway drains.
pub async fn serve(gw: Arc<Gateway>, mail: Arc<Mail>, listener: TcpListener) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = gw.draining.cancelled() => return,
            a = listener.accept() => a,
        };
        let (mut tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "SMTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let busy = Reply::new(421, "4.7.0", "too many connections; try again later");
            let _ = tcp.write_all(&busy.to_bytes()).await;
            gw.metrics
                .smtp_mails
                .inc(&[("result", "too_many_connections")]);
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (gw2, mail2, open2) = (gw.clone(), mail.clone(), open.clone());
        gw.tasks.spawn(async move {
            let _ = tcp.set_nodelay(true);
            connection(&gw2, &mail2, tcp, peer).await;
            open2.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// How one stream of a connection ended.
enum End {
    Closed,
    /// STARTTLS: upgrade and go on with the same session.
    StartTls,
}

async fn connection(gw: &Arc<Gateway>, mail: &Arc<Mail>, tcp: TcpStream, peer: SocketAddr) {
    let Some(smtp) = mail.settings.smtp.as_ref() else {
        return;
    };
    let mut session = Session::new(Config {
        hostname: mail.hostname.clone(),
        max_message_bytes: smtp.max_message_bytes,
        max_recipients: smtp.max_recipients,
        tls_available: mail.tls.is_some(),
        auth_available: smtp.users_file.is_some(),
        max_errors: MAX_ERRORS,
    });
    tracing::debug!(%peer, "SMTP connection");
    let mut tcp = BufReader::new(tcp);
    let greeting = session.greeting();
    if tcp.get_mut().write_all(&greeting.to_bytes()).await.is_err() {
        return;
    }
    match talk(gw, mail, &mut session, &mut tcp, peer.ip()).await {
        End::Closed => {}
        End::StartTls => {
            // Dropping the reader's buffer drops what came after STARTTLS.
            let tcp = tcp.into_inner();
            let Some(tls) = &mail.tls else { return };
            let stream = match tls.acceptor().accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "SMTP TLS handshake failed");
                    return;
                }
            };
            session.tls_started();
            let mut stream = BufReader::new(stream);
            talk(gw, mail, &mut session, &mut stream, peer.ip()).await;
            let _ = stream.get_mut().shutdown().await;
        }
    }
}

/// What reading one line gave.
enum Read {
    /// A line, and whether it ended in CRLF or a bare LF.
    Line(LineEnding),
    TooLong,
    Eof,
}

/// Reads one line into `buf` without its line ending, at most `limit`
/// bytes; a longer line is read to its end and dropped.
async fn read_line<S: AsyncRead + Unpin>(
    r: &mut BufReader<S>,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Read> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(Read::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long && buf.len() + n <= limit + 2 {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
            buf.clear();
        }
        r.consume(n);
        if done {
            if too_long {
                return Ok(Read::TooLong);
            }
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
                return Ok(Read::Line(LineEnding::CrLf));
            }
            return Ok(Read::Line(LineEnding::BareLf));
        }
    }
}

/// Serves commands on one stream until it closes or asks for TLS.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    gw: &Arc<Gateway>,
    mail: &Arc<Mail>,
    session: &mut Session,
    stream: &mut BufReader<S>,
    ip: IpAddr,
) -> End {
    let Some(smtp) = mail.settings.smtp.as_ref() else {
        return End::Closed;
    };
    let mut line = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let (limit, wait) = if session.in_data() {
            (MAX_DATA_LINE, DATA_TIMEOUT)
        } else {
            (MAX_COMMAND_LINE, COMMAND_TIMEOUT)
        };
        // Replies wait while the client has pipelined more (RFC 2920).
        if !out.is_empty() && stream.buffer().is_empty() {
            if stream.get_mut().write_all(&out).await.is_err()
                || stream.get_mut().flush().await.is_err()
            {
                return End::Closed;
            }
            out.clear();
        }
        let read = tokio::select! {
            r = tokio::time::timeout(wait, read_line(stream, &mut line, limit)) => r,
            // The gateway stops (its calls have drained): say so and go.
            _ = gw.closing.cancelled() => {
                let bye = Reply::new(421, "4.3.2", "the gateway is stopping; try again later");
                let _ = stream.get_mut().write_all(&bye.to_bytes()).await;
                return End::Closed;
            }
        };
        let read = match read {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return End::Closed,
            Err(_) => {
                let bye = Reply::new(421, "4.4.2", "timeout; closing");
                let _ = stream.get_mut().write_all(&bye.to_bytes()).await;
                return End::Closed;
            }
        };
        let mut action = match read {
            Read::Eof => return End::Closed,
            Read::TooLong => session.overlong(),
            Read::Line(ending) => {
                let mut policy = MailPolicy { smtp, ip };
                // The line ending counts: SMTP smuggling (CVE-2023-51764).
                session.feed_ending(&line, ending, &mut policy)
            }
        };
        loop {
            action = match action {
                Action::None => break,
                Action::Reply(r) => {
                    count_refusal(gw, &r);
                    out.extend_from_slice(&r.to_bytes());
                    break;
                }
                Action::Close(r) => {
                    out.extend_from_slice(&r.to_bytes());
                    let _ = stream.get_mut().write_all(&out).await;
                    let _ = stream.get_mut().flush().await;
                    return End::Closed;
                }
                Action::StartTls(r) => {
                    out.extend_from_slice(&r.to_bytes());
                    if stream.get_mut().write_all(&out).await.is_err()
                        || stream.get_mut().flush().await.is_err()
                    {
                        return End::Closed;
                    }
                    return End::StartTls;
                }
                Action::Authenticate(Credentials { user, password }) => {
                    let verdict = authenticate(gw, mail, ip, user, password).await;
                    session.auth_verdict(verdict)
                }
                Action::Message(mut envelope) => {
                    // The message moves on to rendering; the envelope stays for the log.
                    let body = std::mem::take(&mut envelope.body);
                    let bytes = body.len();
                    let reply =
                        match sender_for(smtp, ip, envelope.user.as_deref(), &envelope.sender) {
                            Some(sender) => {
                                super::submit::queue_mail(gw, mail, sender, &envelope, body).await
                            }
                            None => Reply::new(550, "5.7.1", "the sender may not fax"),
                        };
                    let result = if reply.code() == 250 {
                        "accepted"
                    } else {
                        refusal_label(&reply)
                    };
                    gw.metrics.smtp_mails.inc(&[("result", result)]);
                    tracing::info!(from = %envelope.sender, to = ?envelope.recipients, user = ?envelope.user,
                        bytes, code = reply.code(), reply = %reply.text(), "mail");
                    out.extend_from_slice(&reply.to_bytes());
                    break;
                }
            }
        }
    }
}

/// Counts refusals at MAIL/RCPT (sender or recipient not allowed, size).
fn count_refusal(gw: &Gateway, r: &Reply) {
    if matches!(
        r.enhanced(),
        Some("5.7.1" | "5.7.0" | "5.1.1" | "5.3.4" | "5.7.11")
    ) {
        gw.metrics.smtp_mails.inc(&[("result", refusal_label(r))]);
    }
}

/// A metric label for a refusal, from its enhanced status code.
fn refusal_label(r: &Reply) -> &'static str {
    match r.enhanced() {
        Some("5.7.0") => "auth_required",
        Some("5.7.1") => "not_allowed",
        Some("5.7.11") => "tls_required",
        Some("5.1.1" | "5.1.3") => "bad_recipient",
        Some("5.3.4") => "too_big",
        Some("5.6.0") => "malformed",
        Some("5.6.1") => "unusable_content",
        Some(e) if e.starts_with('4') => "temporary",
        _ => "refused",
    }
}

/// Checks a password under the per-address throttle, off the async thread
/// (a hash takes milliseconds on purpose).
async fn authenticate(
    gw: &Gateway,
    mail: &Arc<Mail>,
    ip: IpAddr,
    user: String,
    password: String,
) -> AuthVerdict {
    if let Err(secs) = mail.auth_throttle().check(&ip, Instant::now()) {
        gw.metrics.smtp_auth.inc(&[("result", "throttled")]);
        tracing::warn!(%ip, %user, "SMTP AUTH throttled");
        return AuthVerdict::Throttled {
            retry_after_secs: u64::from(secs),
        };
    }
    let users = mail.users();
    let u = user.clone();
    let ok = tokio::task::spawn_blocking(move || users.verify(&u, &password))
        .await
        .unwrap_or(false);
    if ok {
        gw.metrics.smtp_auth.inc(&[("result", "accepted")]);
        AuthVerdict::Accepted
    } else {
        mail.auth_throttle().failed(&ip, Instant::now());
        gw.metrics.smtp_auth.inc(&[("result", "rejected")]);
        tracing::warn!(%ip, %user, "SMTP AUTH rejected");
        AuthVerdict::Rejected
    }
}

//! A misbehaving device, in process: it logs in like a real one, then sends
//! what no real one would (bad frames, unknown messages, lies about its
//! pages). For the hostile-input tests; every call here is a real TCP link
//! to a live daemon.

use std::net::SocketAddr;

use common::codec::{Compression, PageInfo, Resolution};
use common::device::session::Session;
use common::link::coalesce::Coalesce;
use common::link::control::LinkConfig;
use common::link::frame::{self, FrameError};
use common::link::message::{
    CallAnswer, CallRequest, Control, Hello, PROTOCOL_VERSION, ReceiverFrame, Role, SenderFrame,
};
use common::link::mux::{self, MuxStream, Opener, Side};
use common::number::{CallId, Number};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::WAIT;

/// Logs in as `number` (send-only) at `addr`, a gateway or a relay.
pub async fn device(addr: SocketAddr, number: &str, secret: &str) -> Session {
    Session::login(
        &addr.to_string(),
        &number.parse().expect("a number"),
        secret,
        None,
        &LinkConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("rogue device {number} cannot log in at {addr}: {e}"))
}

/// A call request from `from` to `to` announcing `pages` pages of `bytes`.
pub fn request(from: &str, to: &str, pages: u32, bytes: u64) -> CallRequest {
    let number = |n: &str| -> Number { n.parse().expect("a number") };
    CallRequest {
        call_id: CallId::random(),
        from: number(from),
        to: number(to),
        pages,
        bytes,
        via: Vec::new(),
    }
}

/// Opens a call stream on `session` and writes `raw` bytes on it as they are.
pub async fn raw_call(session: &Session, raw: &[u8]) -> MuxStream {
    let mut stream = session.opener.open().await.expect("a call stream opens");
    stream.write_all(raw).await.expect("bytes written");
    stream.flush().await.expect("flushed");
    stream
}

/// Places a call with `req`; returns the stream and the answer.
pub async fn call(session: &Session, req: &CallRequest) -> (MuxStream, CallAnswer) {
    let mut stream = session.opener.open().await.expect("a call stream opens");
    frame::write_msg(&mut stream, req)
        .await
        .expect("request written");
    let answer = tokio::time::timeout(WAIT, frame::read_msg::<_, CallAnswer>(&mut stream))
        .await
        .expect("an answer in time")
        .expect("a readable answer")
        .expect("an answer, not the end of the stream");
    (stream, answer)
}

/// Reads until the other side closes or resets `stream`; fails the test if
/// it stays open (or sends more than a few frames' worth).
pub async fn wait_closed(stream: &mut MuxStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream stayed open for {WAIT:?}");
}

/// The next receiver frame on a call stream (after `Accepted`).
pub async fn receiver_frame(stream: &mut MuxStream) -> Result<Option<ReceiverFrame>, FrameError> {
    tokio::time::timeout(WAIT, frame::read_msg(stream))
        .await
        .unwrap_or_else(|_| panic!("no receiver frame within {WAIT:?}"))
}

/// A page header as faxsend sends it.
pub fn page(index: u32, width: u32, height: u32, data_len: u64) -> SenderFrame {
    SenderFrame::Page {
        index,
        info: PageInfo {
            width,
            height,
            resolution: Resolution::Fine,
            compression: Compression::G4,
            data_len,
        },
    }
}

/// A link at the multiplexer level after a good hello: returns its opener
/// and the raw control stream, to write anything on it.
pub async fn raw_control(addr: SocketAddr, name: &str) -> (Opener, MuxStream) {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the daemon accepts");
    let (opener, _inbound) = mux::start(Coalesce::new(tcp).compat(), Side::Dialer, 16);
    let mut control = opener.open().await.expect("a control stream");
    let hello = Control::Hello(Hello {
        version: PROTOCOL_VERSION,
        role: Role::Device,
        name: name.to_owned(),
    });
    frame::write_msg(&mut control, &hello)
        .await
        .expect("hello written");
    let reply: Option<Control> = tokio::time::timeout(WAIT, frame::read_msg(&mut control))
        .await
        .expect("a hello back in time")
        .expect("a readable hello");
    assert!(
        matches!(reply, Some(Control::Hello(_))),
        "expected a hello, got {reply:?}"
    );
    (opener, control)
}

/// Whether `opener`'s link closes within [`WAIT`].
pub async fn link_closes(opener: &Opener) -> bool {
    tokio::time::timeout(WAIT, opener.closed()).await.is_ok()
}

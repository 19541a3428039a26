//! Hostile input against live daemons: malformed, truncated and oversized
//! frames, unknown messages, a wrong protocol version, a device calling as
//! someone else, corrupted page headers, a call carrying more than it
//! announced, and TIFF files that lie. Each ends at most the offending
//! stream or link, with a logged reason; a real fax still goes through.

use std::path::{Path, PathBuf};

use common::link::control::{self, LinkConfig, LinkError};
use common::link::frame;
use common::link::message::{
    CHUNK_LEN, CallAnswer, CallRefusal, Hello, ReceiverFrame, Role, SenderFrame,
};
use harness::load::Secrets;
use harness::rogue;
use harness::{FaxSend, Gateway, Receiver, Relay, Testbed};
use tokio::io::AsyncWriteExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}

fn secret(bed: &Testbed, number: &str) -> String {
    Secrets::load(bed.fleet().key_file()).of(&number.parse().expect("a number"))
}

/// The network every test here attacks, around `relay`: gateways gw1 (the
/// caller's LAN) and gw2, faxrecv 1002 behind gw2, and the secret 1001 logs
/// in with.
fn lans(bed: &Testbed, relay: Relay) -> (Relay, Gateway, Gateway, Receiver, String) {
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let callee = bed.receiver(&gw2, "1002", &[]);
    let s1001 = secret(bed, "1001");
    (relay, gw1, gw2, callee, s1001)
}

#[test]
fn bad_frames_and_unknown_messages_close_only_their_stream_or_link() {
    let bed = Testbed::new();
    let (relay, gw1, _gw2, mut callee, s1001) = lans(&bed, bed.relay("relay-a"));

    runtime().block_on(async {
        // A device straight at the relay, so the relay itself reads the junk.
        let session = rogue::device(relay.addr(), "1001", &s1001).await;
        for (what, junk) in [
            ("truncated frame", vec![0, 0, 0, 100, 1, 2, 3]),
            ("frame over the cap", vec![0xff, 0xff, 0xff, 0xff, 0, 0]),
            ("unknown message", vec![0, 0, 0, 3, 0xee, 0xee, 0xee]),
        ] {
            let mut stream = rogue::raw_call(&session, &junk).await;
            // Ends what was sent so far: a truncated frame stays truncated.
            let _ = stream.shutdown().await;
            rogue::wait_closed(&mut stream).await;
            eprintln!("{what}: call stream closed");
        }
        // The same link still carries calls: the relay answers this one.
        let (_, answer) = rogue::call(&session, &rogue::request("1001", "4999", 1, 10)).await;
        assert!(
            matches!(
                answer,
                CallAnswer::Refused {
                    reason: CallRefusal::UnknownNumber,
                    ..
                }
            ),
            "{answer:?}"
        );

        // Junk on a control stream ends that link, and only that link.
        for (what, junk) in [
            ("unknown control message", vec![0, 0, 0, 2, 0xee, 0x01]),
            (
                "control frame over the cap",
                vec![0x00, 0x20, 0x00, 0x00, 1, 2],
            ),
        ] {
            let (opener, mut control) = rogue::raw_control(relay.addr(), "junk").await;
            control.write_all(&junk).await.expect("junk written");
            control.flush().await.expect("flushed");
            assert!(
                rogue::link_closes(&opener).await,
                "{what}: the link stayed up"
            );
        }

        // Another protocol version is refused with the reason.
        let hello = Hello {
            version: 99,
            role: Role::Device,
            name: "from-the-future".into(),
        };
        let err = control::dial(&relay.addr().to_string(), hello, &LinkConfig::default())
            .await
            .expect_err("version 99 is refused");
        match err {
            LinkError::Refused { reason, .. } => {
                assert!(
                    reason.contains("protocol version 99 is not supported"),
                    "{reason}"
                )
            }
            other => panic!("expected a refusal, got {other}"),
        }
    });

    let log = relay.stderr();
    for reason in ["bad call request", "bad control frame", "exceeds the limit"] {
        assert!(log.contains(reason), "relayd logged no {reason:?}:\n{log}");
    }
    assert!(!log.contains("panicked"), "{log}");
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn a_device_calling_as_a_number_it_did_not_log_in_with_is_refused() {
    let bed = Testbed::new();
    let (relay, gw1, _gw2, _callee, s1001) = lans(&bed, bed.relay("relay-a"));

    runtime().block_on(async {
        // At the relay directly, and through a gateway: each hop checks.
        for addr in [relay.addr(), gw1.addr()] {
            let session = rogue::device(addr, "1001", &s1001).await;
            let (_, answer) = rogue::call(&session, &rogue::request("1003", "1002", 1, 10)).await;
            match answer {
                CallAnswer::Refused {
                    reason: CallRefusal::NotAuthorized,
                    detail,
                    ..
                } => assert!(detail.contains("1003 is not logged in"), "{detail}"),
                other => panic!("calling as 1003 via {addr}: {other:?}"),
            }
        }
    });
    assert!(
        relay
            .stderr()
            .contains("1003 is not logged in on this link")
    );
}

#[test]
fn a_corrupted_page_header_ends_only_that_call_and_stores_nothing() {
    let bed = Testbed::new();
    let (_relay, gw1, _gw2, mut callee, s1001) = lans(&bed, bed.relay("relay-a"));

    runtime().block_on(async {
        let session = rogue::device(gw1.addr(), "1001", &s1001).await;
        let (mut stream, answer) =
            rogue::call(&session, &rogue::request("1001", "1002", 1, 100)).await;
        assert!(matches!(answer, CallAnswer::Accepted { .. }), "{answer:?}");
        // A page four billion rows high: sizing anything by it would be fatal.
        frame::write_msg(&mut stream, &rogue::page(0, 1728, u32::MAX, 100))
            .await
            .expect("header written");
        match rogue::receiver_frame(&mut stream).await {
            Ok(Some(ReceiverFrame::Hangup { reason })) => {
                assert!(
                    reason.contains("invalid page geometry 1728x4294967295"),
                    "{reason}"
                )
            }
            other => panic!("expected a hangup, got {other:?}"),
        }
    });
    assert!(
        callee.faxes().is_empty(),
        "a fax was stored: {:?}",
        callee.faxes()
    );
    assert!(
        callee.is_running(),
        "faxrecv died:\n{}",
        callee.stderr_tail()
    );
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

#[test]
fn a_call_carrying_more_than_it_announced_is_cut_at_the_relay() {
    let bed = Testbed::new();
    let extra = ["--max-page-bytes".to_owned(), "65536".to_owned()];
    let relay = Relay::start_with(bed.path(), bed.fleet(), "relay-a", &extra);
    let (relay, gw1, _gw2, mut callee, s1001) = lans(&bed, relay);

    runtime().block_on(async {
        let session = rogue::device(gw1.addr(), "1001", &s1001).await;
        // One small page announced; four hundred kilobytes sent.
        let (stream, answer) =
            rogue::call(&session, &rogue::request("1001", "1002", 1, 1000)).await;
        assert!(matches!(answer, CallAnswer::Accepted { .. }), "{answer:?}");
        let sent = 400 * 1024;
        // Write and read at once: once the relay cuts the call, writes may
        // stall for want of flow-control credit, while the read side sees
        // the stream end.
        let (mut rd, mut wr) = tokio::io::split(stream);
        let writer = tokio::spawn(async move {
            frame::write_msg(&mut wr, &rogue::page(0, 1728, 100, sent)).await?;
            let chunk = vec![0u8; CHUNK_LEN];
            for _ in 0..sent / CHUNK_LEN as u64 {
                frame::write_raw(&mut wr, &chunk).await?;
            }
            frame::write_msg(&mut wr, &SenderFrame::EndOfDocument).await
        });
        // Whatever comes back, it is never the fax's completion.
        let completed = tokio::time::timeout(harness::WAIT, async {
            loop {
                match frame::read_msg::<_, ReceiverFrame>(&mut rd).await {
                    Ok(Some(ReceiverFrame::Complete { .. })) => return true,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return false,
                }
            }
        })
        .await;
        writer.abort();
        assert_ne!(completed, Ok(true), "the oversized call completed");
    });
    relay.wait_stderr_contains("over the limit");
    assert!(
        callee.faxes().is_empty(),
        "a fax was stored: {:?}",
        callee.faxes()
    );
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(callee.wait_faxes(1).len(), 1);
}

/// Sets IFD entry `tag` of the first page of a little-endian TIFF to `value`.
fn patch_tiff(path: &Path, tag: u16, value: u32) {
    let mut bytes = std::fs::read(path).expect("the TIFF");
    assert_eq!(&bytes[..4], b"II*\0", "a little-endian TIFF");
    let ifd = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let entries = usize::from(u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]));
    let at = (0..entries)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&at| u16::from_le_bytes([bytes[at], bytes[at + 1]]) == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {path:?}"));
    // Make it a LONG, so any value fits.
    bytes[at + 2..at + 4].copy_from_slice(&4u16.to_le_bytes());
    bytes[at + 4..at + 8].copy_from_slice(&1u32.to_le_bytes());
    bytes[at + 8..at + 12].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).expect("patched");
}

#[test]
fn faxsend_with_a_lying_tiff_fails_before_dialing_with_exit_2() {
    let bed = Testbed::new();
    let good = bed.path().join("good.tif");
    let note = bed.note();
    let made = FaxSend::with_args(
        bed.path(),
        &[
            note.to_str().expect("utf-8"),
            "--output",
            good.to_str().expect("utf-8"),
        ],
    )
    .run();
    made.assert_delivered();
    let lie = |name: &str, tag: u16, value: u32| -> PathBuf {
        let path = bed.path().join(name);
        std::fs::copy(&good, &path).expect("copied");
        patch_tiff(&path, tag, value);
        path
    };
    // Nothing listens on port 1: had faxsend dialed, it would exit 3.
    let nowhere = "127.0.0.1:1".parse().expect("an address");
    let secret = bed.fleet().secret_file("1001");
    for (file, words) in [
        (
            lie("count.tif", 279, 0x3fff_ffff),
            vec!["count.tif", "past the end of the file"],
        ),
        (
            lie("offset.tif", 273, 0xffff_fff0),
            vec!["offset.tif", "past the end of the file"],
        ),
        (
            lie("wide.tif", 256, 1_000_000),
            vec!["wide.tif", "over the limit"],
        ),
    ] {
        FaxSend::new(bed.path(), nowhere, "1001", &secret, "1002", &[file])
            .run()
            .assert_failed(2, &words);
    }
}

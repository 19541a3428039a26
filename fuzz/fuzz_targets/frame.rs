//! The frame decoder: any byte stream read as frames (length prefix, cap),
//! each frame then decoded as every message type a hop reads.
#![no_main]

use common::link::frame;
use common::link::message::{CallAnswer, CallRequest, Control, ReceiverFrame, SenderFrame};
use libfuzzer_sys::fuzz_target;

/// A small cap, so the fuzzer reaches "too large" as well as full frames.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    futures::executor::block_on(async {
        while let Ok(Some(f)) = frame::read_frame(&mut stream, MAX).await {
            assert!(f.len() <= MAX);
            let _ = postcard::from_bytes::<Control>(&f);
            let _ = postcard::from_bytes::<CallRequest>(&f);
            let _ = postcard::from_bytes::<CallAnswer>(&f);
            let _ = postcard::from_bytes::<SenderFrame>(&f);
            let _ = postcard::from_bytes::<ReceiverFrame>(&f);
        }
    });
});

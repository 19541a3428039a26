//! The message decoder (postcard): whatever decodes must encode again and
//! decode to the same value.
#![no_main]

use common::link::message::{CallAnswer, CallRequest, Control, ReceiverFrame, SenderFrame};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = postcard::from_bytes::<T>(data) {
        let again = postcard::to_allocvec(&value).expect("a decoded value encodes");
        let back: T = postcard::from_bytes(&again).expect("an encoded value decodes");
        assert_eq!(back, value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Control>(data);
    round_trip::<CallRequest>(data);
    round_trip::<CallAnswer>(data);
    round_trip::<SenderFrame>(data);
    round_trip::<ReceiverFrame>(data);
});

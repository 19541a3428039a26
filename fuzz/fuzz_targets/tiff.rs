//! The TIFF reader: any bytes as a TIFF file, every page decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::codec::tiff_read::decode_tiff_bytes(std::path::Path::new("fuzz.tif"), data);
});

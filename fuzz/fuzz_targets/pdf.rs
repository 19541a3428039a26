//! The PDF reader: any bytes as a PDF file, its first two pages rendered
//! (the page cap bounds the work per input; libFuzzer's -timeout the time).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::codec::pdf::render_pdf_bytes(std::path::Path::new("fuzz.pdf"), data, 2);
});

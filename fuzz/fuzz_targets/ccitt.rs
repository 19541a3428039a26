//! The CCITT decoders (MH, MR, G4): the first bytes choose the compression
//! and geometry, the rest is the page data.
#![no_main]

use common::codec::{Compression, EncodedPage, Resolution, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<5>() else {
        return;
    };
    let compression = match head[0] % 3 {
        0 => Compression::G4,
        1 => Compression::Mr,
        _ => Compression::Mh,
    };
    // Real widths and small odd ones; heights up to 1024 rows, plus a few
    // absurd ones that must be refused before anything is allocated.
    let width = match head[1] % 5 {
        0 => 1728,
        1 => 2048,
        2 => 2432,
        3 => u32::from(u16::from_le_bytes([head[2], head[3]])),
        _ => u32::MAX - u32::from(head[2]),
    };
    let height = match head[4] {
        255 => u32::MAX,
        h => u32::from(h) * 4 + u32::from(head[3] % 4),
    };
    let page = EncodedPage {
        width,
        height,
        resolution: Resolution::Fine,
        compression,
        data: body.to_vec(),
    };
    let _ = decode(&page);
});

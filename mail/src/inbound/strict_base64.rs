//! A base64 decoder for MIME bodies (RFC 2045 §6.8) that says why content is
//! damaged. mail-parser keeps a part with a bad character as raw text and
//! drops a dangling last character without a word, so every base64 part is
//! decoded again here from its raw bytes.
//!
//! Accepted: line breaks and other white space anywhere, missing padding at
//! the end (the bytes are still all there), padded chunks run together (some
//! mailers encode line by line). Refused: any other character, padding after
//! a group of one character or where no group is open, and a last group of
//! one character (it encodes no whole byte: the content was cut).

/// Decodes `raw`, or says what is wrong with it.
pub(super) fn decode(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    let mut group = [0u8; 4];
    let mut filled = 0;
    // The last significant character was padding: more padding may follow.
    let mut in_padding = false;
    for (at, &byte) in raw.iter().enumerate() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => {
                match filled {
                    2 | 3 => flush(&group, filled, &mut out),
                    0 if in_padding => {}
                    _ => return Err(format!("misplaced padding '=' at byte {at}")),
                }
                filled = 0;
                in_padding = true;
                continue;
            }
            _ => {
                return Err(format!(
                    "it holds {} at byte {at}, which is not base64",
                    describe(byte)
                ));
            }
        };
        in_padding = false;
        group[filled] = value;
        filled += 1;
        if filled == 4 {
            flush(&group, 4, &mut out);
            filled = 0;
        }
    }
    match filled {
        1 => Err("it ends in the middle of a byte (the content was cut)".into()),
        2 | 3 => {
            flush(&group, filled, &mut out);
            Ok(out)
        }
        _ => Ok(out),
    }
}

/// Appends the bytes of a group of `filled` (2 to 4) characters.
fn flush(group: &[u8; 4], filled: usize, out: &mut Vec<u8>) {
    let word = group
        .iter()
        .take(filled)
        .enumerate()
        .fold(0u32, |word, (i, &v)| word | (u32::from(v) << (18 - 6 * i)));
    let bytes = word.to_be_bytes();
    out.extend_from_slice(&bytes[1..filled]);
}

fn describe(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("the byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::decode;
    use base64::Engine as _;

    #[test]
    fn decodes_what_the_base64_crate_encodes() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), data, "{encoded}");
            // Wrapped at 8 characters with CRLF, and without padding.
            let wrapped: Vec<u8> = encoded
                .as_bytes()
                .chunks(8)
                .flat_map(|line| line.iter().copied().chain(*b"\r\n"))
                .collect();
            assert_eq!(decode(&wrapped).unwrap(), data);
            assert_eq!(
                decode(encoded.trim_end_matches('=').as_bytes()).unwrap(),
                data
            );
        }
    }

    #[test]
    fn accepts_padded_chunks_run_together() {
        assert_eq!(decode(b"YQ==\r\nYg==\r\nYw==").unwrap(), b"abc");
    }

    #[test]
    fn refuses_bad_characters_cut_content_and_misplaced_padding() {
        let err = decode(b"SGVs*G8=").unwrap_err();
        assert!(err.contains("'*' at byte 4"), "{err}");
        assert!(decode(b"SGVsbG8\x00").unwrap_err().contains("0x00"));
        assert!(decode(b"SGVsb").unwrap_err().contains("cut"));
        assert!(decode(b"S===").unwrap_err().contains("padding"));
        assert!(decode(b"=SGVs").unwrap_err().contains("padding"));
        assert!(decode(b"SGVs-bG8=").is_err());
    }
}

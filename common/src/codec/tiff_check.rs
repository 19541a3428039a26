//! A walk over a TIFF file's directories before the `tiff` crate reads it:
//! that crate sizes its buffers by the value counts the entries claim, so a
//! lying count (billions of values in a small file) would allocate first and
//! fail later. Here every entry's values must fit in the file, and the chain
//! of directories must end.

/// Directories followed at most (a fax has one per page).
const MAX_IFDS: usize = 10_000;

/// Bytes per value of each TIFF field type; `None` for a type we do not know
/// (the `tiff` crate decides about those, and reads no values for them).
fn type_size(field_type: u16) -> Option<u64> {
    Some(match field_type {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

/// Checks that no directory entry claims more bytes of values than the file
/// holds, and that the directory chain stays inside the file and ends.
pub fn check_ifds(bytes: &[u8]) -> Result<(), String> {
    let little = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err("not a TIFF header".into()),
    };
    let u16_at = |at: u64| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(u64::from(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |at: u64| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let u64_at = |at: u64| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let truncated = || "the file ends inside a directory".to_owned();
    let big = match u16_at(2) {
        Some(42) => false,
        Some(43) => true,
        _ => return Err("not a TIFF header".into()),
    };
    // Classic: u16 entry count, 12-byte entries with a u32 count; BigTIFF:
    // u64 entry count, 20-byte entries with a u64 count.
    let (first, count_len, entry_len) = if big { (8, 8, 20) } else { (4, 2, 12) };
    let read_word = |at: u64| if big { u64_at(at) } else { u32_at(at) };
    let file_len = bytes.len() as u64;
    let mut next = read_word(first).ok_or_else(truncated)?;
    let mut seen = std::collections::HashSet::new();
    while next != 0 {
        if seen.len() >= MAX_IFDS || !seen.insert(next) {
            return Err("the chain of directories loops or never ends".into());
        }
        let entries = if big { u64_at(next) } else { u16_at(next) }.ok_or_else(truncated)?;
        let start = next + count_len;
        let end = entries
            .checked_mul(entry_len)
            .and_then(|n| n.checked_add(start))
            .filter(|&end| end <= file_len)
            .ok_or_else(truncated)?;
        for entry in (start..end).step_by(entry_len as usize) {
            let tag = u16_at(entry).ok_or_else(truncated)?;
            let field_type = u16_at(entry + 2).ok_or_else(truncated)?;
            let count = if big {
                u64_at(entry + 4)
            } else {
                u32_at(entry + 4)
            }
            .ok_or_else(truncated)?;
            if let Some(size) = type_size(field_type as u16)
                && count.checked_mul(size).is_none_or(|n| n > file_len)
            {
                return Err(format!(
                    "tag {tag} claims {count} values, more than the file's {file_len} bytes hold"
                ));
            }
        }
        next = read_word(end).ok_or_else(truncated)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic little-endian TIFF with one directory of `entries`.
    fn tiff(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut b = b"II*\0".to_vec();
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, ty, count, value) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    #[test]
    fn honest_entries_pass_and_lying_counts_do_not() {
        assert_eq!(
            check_ifds(&tiff(&[(256, 3, 1, 1728), (282, 5, 1, 8)])),
            Ok(())
        );
        let err = check_ifds(&tiff(&[(282, 5, 0x4000_0000, 8)])).unwrap_err();
        assert!(err.contains("tag 282 claims 1073741824 values"), "{err}");
    }

    #[test]
    fn loops_and_truncation_are_refused() {
        let mut looped = tiff(&[(256, 3, 1, 1)]);
        let n = looped.len();
        looped[n - 4..].copy_from_slice(&8u32.to_le_bytes());
        assert!(check_ifds(&looped).unwrap_err().contains("loops"));
        let whole = tiff(&[(256, 3, 1, 1)]);
        assert!(check_ifds(&whole[..whole.len() - 3]).is_err());
        assert!(check_ifds(b"II*\0\xff\xff\xff\xff").is_err());
        assert!(check_ifds(b"PK").is_err());
    }
}

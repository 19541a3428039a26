//! An MSB-first bit writer for the CCITT encoders.

/// Collects code words most significant bit first (TIFF FillOrder 1).
///
/// Bits gather in a 64-bit accumulator and leave it 32 at a time, so the
/// hot path is a shift, an OR and a compare.
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Pending bits, right-aligned: the low `pending` bits of `acc`.
    acc: u64,
    pending: u32,
}

impl BitWriter {
    /// A writer whose buffer starts with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> BitWriter {
        BitWriter {
            out: Vec::with_capacity(capacity),
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `len` bits of `code` (`len` at most 32).
    #[inline(always)]
    pub(crate) fn put(&mut self, code: u32, len: u32) {
        debug_assert!(len <= 32 && (len == 32 || code >> len == 0));
        // `pending` stays below 32 between calls, so 32 more bits still fit.
        self.acc = (self.acc << len) | u64::from(code);
        self.pending += len;
        if self.pending >= 32 {
            self.pending -= 32;
            let word = (self.acc >> self.pending) as u32;
            self.out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Number of bits already used in the current (partly filled) byte.
    #[inline(always)]
    pub(crate) fn bit_in_byte(&self) -> u32 {
        self.pending % 8
    }

    /// Pads with 0 bits to the next byte boundary and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.pending % 8) % 8;
        self.acc <<= pad;
        self.pending += pad;
        while self.pending >= 8 {
            self.pending -= 8;
            self.out.push((self.acc >> self.pending) as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_msb_first_and_pads_with_zeros() {
        let mut w = BitWriter::with_capacity(0);
        w.put(0b101, 3);
        w.put(0b1, 1);
        assert_eq!(w.bit_in_byte(), 4);
        w.put(0xffff_ffff, 32);
        w.put(0b1, 1);
        assert_eq!(w.finish(), vec![0b1011_1111, 0xff, 0xff, 0xff, 0b1111_1000]);
    }
}

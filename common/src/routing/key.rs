//! A fax number packed into 16 bytes, the routing table's key: a number is
//! at most 32 characters from `+0123456789`, so each fits a nibble (0 ends
//! a shorter number). Inline instead of a heap string, which halves what
//! a million-number table takes.

use crate::number::Number;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NumberKey([u8; 16]);

impl NumberKey {
    pub fn new(number: &Number) -> NumberKey {
        let mut packed = [0u8; 16];
        // A Number holds at most 32 characters from "+0123456789" (checked
        // where it is parsed), so every index and nibble below is in range.
        for (i, b) in number.as_str().bytes().take(32).enumerate() {
            let nibble = match b {
                b'+' => 11,
                d => d.wrapping_sub(b'0') + 1,
            } & 0x0f;
            packed[i / 2] |= nibble << (4 * (i % 2));
        }
        NumberKey(packed)
    }

    pub fn number(&self) -> Number {
        let mut s = String::with_capacity(32);
        for i in 0..32 {
            let nibble = (self.0[i / 2] >> (4 * (i % 2))) & 0x0f;
            match nibble {
                0 => break,
                11 => s.push('+'),
                d => s.push(char::from(b'0' + d - 1)),
            }
        }
        Number::from_packed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_pack_and_unpack() {
        let longest = format!("+{}", "9".repeat(31));
        let all_digits = "0123456789".repeat(3) + "01";
        for s in ["1", "1001", "+4930123", "0", "000", &longest, &all_digits] {
            let n: Number = s.parse().unwrap();
            assert_eq!(NumberKey::new(&n).number(), n, "{s}");
        }
        let a = NumberKey::new(&"10".parse().unwrap());
        let b = NumberKey::new(&"100".parse().unwrap());
        assert_ne!(a, b, "trailing zeros are kept");
    }
}

//! Colour to luminance for TIFF pages, with Pillow's arithmetic, so that a
//! page arrives looking as it does in Pillow (and the viewers built on it).
//!
//! Every formula here was checked against Pillow 13 pixel by pixel (see
//! `common/tests/tiff_layouts.rs`): RGB to L is ITU-R 601-2 luma in 16.16
//! fixed point, rounded; CMYK goes to RGB first; palette colours are the
//! high bytes of the 16-bit colour map. Where Pillow's own rendering is no
//! use to anyone (it clips 12- and 16-bit grey to 255 instead of scaling,
//! a white page), [`to_8bit`] says what we do instead.

/// Pillow's `convert("L")` from RGB: `L = R*299/1000 + G*587/1000 +
/// B*114/1000` in 16.16 fixed point, rounded to nearest.
pub(crate) fn luma(r: u8, g: u8, b: u8) -> u8 {
    // The weights add up to 65536, so 255s give 255 and the shift fits u8.
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// A stored sample of `bits` bits as an 8-bit level.
///
/// Below 8 bits the level is spread over 0..=255 (1-bit 1 is 255, 2-bit 1 is
/// 85, 4-bit 1 is 17), as Pillow's `L;2` and `L;4` unpackers do.
///
/// Above 8 bits we keep the high byte (`v >> (bits - 8)`). Pillow does the
/// same for 16-bit RGB, RGBA and CMYK, but opens 12- and 16-bit grey as
/// `I;16` and its `convert("L")` then clips every value above 255 to white:
/// a 16-bit grey scan shows as a blank page. Nobody wants that, so grey is
/// scaled like colour; the tests compare those layouts with the source
/// picture instead of Pillow. The high byte rather than a rounded
/// `(v * 255 + 32767) / 65535` keeps grey and colour pages of one file
/// consistent with each other and with Pillow's colour path; the two differ
/// by at most one level.
pub(crate) fn to_8bit(v: u16, bits: u8) -> u8 {
    match bits {
        1 => {
            if v & 1 != 0 {
                255
            } else {
                0
            }
        }
        2 => (v & 3) as u8 * 85,
        4 => (v & 15) as u8 * 17,
        8 => v as u8,
        9..=16 => (v >> (bits - 8)) as u8,
        // Other depths are refused before any sample is read (see
        // `tiff_samples::Layout::check`); scale them exactly all the same.
        _ => {
            let max = (1u32 << bits.clamp(1, 16)) - 1;
            ((u32::from(v).min(max) * 255 + max / 2) / max) as u8
        }
    }
}

/// Pillow's CMYK to RGB: each of R, G, B is `(255 - ink) * (255 - K) / 255`,
/// computed as `nk - nk * ink / 255` with Pillow's rounded division.
pub(crate) fn cmyk_to_rgb(c: u8, m: u8, y: u8, k: u8) -> (u8, u8, u8) {
    let nk = 255 - u32::from(k);
    let one = |ink: u8| {
        let t = u32::from(ink) * nk + 128;
        // `((t >> 8) + t) >> 8` is t / 255 rounded, and at most nk.
        (nk - (((t >> 8) + t) >> 8)) as u8
    };
    (one(c), one(m), one(y))
}

/// YCbCr to RGB for samples not stored as JPEG, as libtiff converts them:
/// the YCbCrCoefficients and ReferenceBlackWhite tags say how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct YCbCr {
    /// LumaRed, LumaGreen, LumaBlue.
    coefficients: [f64; 3],
    /// Black and white codes of Y, Cb and Cr.
    reference: [f64; 6],
}

impl YCbCr {
    /// From the tags; `None` takes the TIFF defaults (ITU-R 601 and full
    /// range, as JFIF).
    pub(crate) fn new(coefficients: Option<[f64; 3]>, reference: Option<[f64; 6]>) -> Self {
        let coefficients = coefficients
            .filter(|c| c.iter().all(|v| v.is_finite() && *v > 0.0))
            .unwrap_or([0.299, 0.587, 0.114]);
        let reference = reference
            .filter(|r| r.iter().all(|v| v.is_finite()) && r[1] != r[0] && r[3] != r[2])
            .filter(|r| r[5] != r[4])
            .unwrap_or([0.0, 255.0, 128.0, 255.0, 128.0, 255.0]);
        YCbCr {
            coefficients,
            reference,
        }
    }

    /// libtiff's `TIFFYCbCrtoRGB`, in floating point (its tables are the
    /// same arithmetic in fixed point; the two agree on every level of the
    /// test pictures).
    pub(crate) fn rgb(&self, y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
        let [lr, lg, lb] = self.coefficients;
        let r = &self.reference;
        let y = (f64::from(y) - r[0]) * 255.0 / (r[1] - r[0]);
        // Chroma codes run from the "black" code (zero chroma) to 127 above.
        let cb = (f64::from(cb) - r[2]) * 127.0 / (r[3] - r[2]);
        let cr = (f64::from(cr) - r[4]) * 127.0 / (r[5] - r[4]);
        let red = y + cr * (2.0 - 2.0 * lr);
        let blue = y + cb * (2.0 - 2.0 * lb);
        let green = (y - lb * blue - lr * red) / lg;
        (clamp(red), clamp(green), clamp(blue))
    }
}

fn clamp(v: f64) -> u8 {
    // `as` saturates and maps NaN to 0.
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// JPEG's (JFIF's) YCbCr to RGB as libjpeg does it, in 16.16 fixed point:
/// what Pillow shows for a JPEG-compressed TIFF, since libtiff hands such
/// pages to libjpeg for conversion. The tags play no part.
pub(crate) fn jpeg_ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    const HALF: i32 = 1 << 15;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    // FIX(1.40200), FIX(1.77200), FIX(0.71414), FIX(0.34414) of jdcolor.c.
    let red = y + ((91881 * cr + HALF) >> 16);
    let blue = y + ((116130 * cb + HALF) >> 16);
    let green = y + ((-46802 * cr - 22554 * cb + HALF) >> 16);
    let byte = |v: i32| v.clamp(0, 255) as u8;
    (byte(red), byte(green), byte(blue))
}

/// A premultiplied ("associated alpha") level laid over white paper: the
/// paper shows through by `255 - alpha`.
pub(crate) fn premultiplied_over_white(level: u8, alpha: u8) -> u8 {
    level.saturating_add(255 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_pillow_at_the_corners_and_rounds() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        // Pillow: RGB (255, 0, 0) -> 76, (0, 255, 0) -> 150, (0, 0, 255) -> 29.
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        // 100*0.299 + 150*0.587 + 200*0.114 = 140.75 -> 141 (truncating gave 140).
        assert_eq!(luma(100, 150, 200), 141);
    }

    #[test]
    fn depths_spread_over_the_byte() {
        assert_eq!(to_8bit(1, 1), 255);
        assert_eq!(to_8bit(2, 2), 170);
        assert_eq!(to_8bit(15, 4), 255);
        assert_eq!(to_8bit(0xfff, 12), 255);
        assert_eq!(to_8bit(0x7ff, 12), 127);
        assert_eq!(to_8bit(0xffff, 16), 255);
        assert_eq!(to_8bit(0x80ff, 16), 128);
        assert_eq!(to_8bit(7, 3), 255);
    }

    #[test]
    fn cmyk_matches_pillow() {
        assert_eq!(cmyk_to_rgb(0, 0, 0, 0), (255, 255, 255));
        assert_eq!(cmyk_to_rgb(0, 0, 0, 255), (0, 0, 0));
        assert_eq!(cmyk_to_rgb(255, 0, 0, 0), (0, 255, 255));
        // Pillow: CMYK (10, 20, 30, 40) -> RGB (207, 198, 190).
        assert_eq!(cmyk_to_rgb(10, 20, 30, 40), (207, 198, 190));
    }

    #[test]
    fn ycbcr_defaults_are_jfif() {
        let tiff = YCbCr::new(None, None);
        for (y, cb, cr) in [(0, 128, 128), (255, 128, 128), (76, 85, 255), (150, 44, 21)] {
            let a = tiff.rgb(y, cb, cr);
            let b = jpeg_ycbcr_to_rgb(y, cb, cr);
            for (p, q) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)] {
                assert!(p.abs_diff(q) <= 1, "{y} {cb} {cr}: {a:?} {b:?}");
            }
        }
        assert_eq!(jpeg_ycbcr_to_rgb(76, 85, 255), (254, 0, 0));
    }
}

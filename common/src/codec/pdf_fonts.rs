//! Fonts for PDFs that name a font without embedding it (the 14 standard
//! PDF fonts, or any font the producer left out).
//!
//! ghostscript, poppler and so HylaFAX draw those with the URW base-35
//! fonts, metric clones of Helvetica, Times and Courier that most Linux
//! systems have (Debian's fonts-urw-base35, which ghostscript pulls in). We
//! use them too when they are installed, so a fax looks like what those
//! tools make of the same PDF; otherwise hayro's built-in substitutes
//! (Foxit's fonts, compiled into the binary) stand in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use hayro::hayro_interpret::font::{FontData, FontQuery, StandardFont};

/// Where distributions put the URW base-35 fonts in OpenType form.
const URW_DIRS: [&str; 3] = [
    "/usr/share/fonts/opentype/urw-base35",
    "/usr/share/fonts/urw-base35",
    "/usr/local/share/fonts/urw-base35",
];

/// The URW font file that stands in for a standard font.
fn urw_file(font: StandardFont) -> &'static str {
    match font {
        StandardFont::Helvetica => "NimbusSans-Regular.otf",
        StandardFont::HelveticaBold => "NimbusSans-Bold.otf",
        StandardFont::HelveticaOblique => "NimbusSans-Italic.otf",
        StandardFont::HelveticaBoldOblique => "NimbusSans-BoldItalic.otf",
        StandardFont::Courier => "NimbusMonoPS-Regular.otf",
        StandardFont::CourierBold => "NimbusMonoPS-Bold.otf",
        StandardFont::CourierOblique => "NimbusMonoPS-Italic.otf",
        StandardFont::CourierBoldOblique => "NimbusMonoPS-BoldItalic.otf",
        StandardFont::TimesRoman => "NimbusRoman-Regular.otf",
        StandardFont::TimesBold => "NimbusRoman-Bold.otf",
        StandardFont::TimesItalic => "NimbusRoman-Italic.otf",
        StandardFont::TimesBoldItalic => "NimbusRoman-BoldItalic.otf",
        StandardFont::ZapfDingBats => "D050000L.otf",
        StandardFont::Symbol => "StandardSymbolsPS.otf",
    }
}

/// The font for a query: the system's URW font, else hayro's own.
pub(crate) fn resolve(query: &FontQuery) -> Option<(FontData, u32)> {
    let font = match query {
        FontQuery::Standard(font) => *font,
        FontQuery::Fallback(fallback) => fallback.pick_standard_font(),
    };
    Some(system_font(urw_file(font)).map_or_else(|| font.get_font_data(), |data| (data, 0)))
}

/// A font file of the URW directory, read once per process (None when it
/// is not installed).
fn system_font(name: &'static str) -> Option<FontData> {
    static LOADED: LazyLock<Mutex<HashMap<&'static str, Option<FontData>>>> =
        LazyLock::new(Mutex::default);
    static DIR: LazyLock<Option<PathBuf>> = LazyLock::new(|| {
        URW_DIRS
            .iter()
            .map(Path::new)
            .find(|d| d.join("NimbusSans-Regular.otf").is_file())
            .map(Path::to_owned)
    });
    let dir = DIR.as_ref()?;
    // A std Mutex: nothing awaits while it is held, and a file is read at
    // most once per font per process.
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .entry(name)
        .or_insert_with(|| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|bytes| Arc::new(bytes) as FontData)
        })
        .clone()
}

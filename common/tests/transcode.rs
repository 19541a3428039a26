//! Fitting pages to a callee's capabilities.

use common::codec::fit::reshape;
use common::codec::{
    Bitmap, Capabilities, Compression, EncodedPage, PageInfo, Resolution, decode, encode, fit_page,
};

fn letter(width: u32, resolution: Resolution) -> Bitmap {
    let m = resolution.row_multiple();
    let mut page = Bitmap::new_fax(width, 300 * m, resolution);
    for line in 0..10 {
        let y = (20 + line * 28) * m;
        for word in 0..12 {
            let x = 80 + word * 120;
            page.fill_rect(x, y, x + 90, y + 10 * m);
        }
    }
    page.fill_rect(40, 5, width - 40, 6); // a one-row rule
    page
}

fn caps(compressions: &[Compression], resolutions: &[Resolution], widths: &[u32]) -> Capabilities {
    Capabilities {
        compressions: compressions.to_vec(),
        resolutions: resolutions.to_vec(),
        widths: widths.to_vec(),
        max_pages: 100,
    }
}

#[test]
fn a_page_that_fits_comes_back_byte_for_byte() {
    for compression in Compression::ALL {
        let page = encode(&letter(1728, Resolution::Fine), compression).expect("encodes");
        let fitted = fit_page(&page, &Capabilities::all()).expect("fits");
        assert_eq!(fitted, page);
    }
}

#[test]
fn compression_falls_back_to_the_best_supported() {
    let bitmap = letter(1728, Resolution::Fine);
    let page = encode(&bitmap, Compression::G4).expect("encodes");
    for (supported, expect) in [
        (&[Compression::Mh, Compression::Mr][..], Compression::Mr),
        (&[Compression::Mh], Compression::Mh),
    ] {
        let fitted = fit_page(&page, &caps(supported, &Resolution::ALL, &[1728])).expect("fits");
        assert_eq!(fitted.compression, expect);
        assert_eq!(
            (fitted.width, fitted.height, fitted.resolution),
            (1728, 600, Resolution::Fine)
        );
        assert!(
            decode(&fitted).expect("decodes") == bitmap,
            "same pixels in {expect}"
        );
    }
}

#[test]
fn superfine_goes_down_to_fine_then_standard_keeping_thin_lines() {
    let bitmap = letter(1728, Resolution::Superfine);
    let page = encode(&bitmap, Compression::G4).expect("encodes");
    let fine = fit_page(
        &page,
        &caps(
            &[Compression::G4],
            &[Resolution::Standard, Resolution::Fine],
            &[1728],
        ),
    )
    .expect("fits");
    assert_eq!((fine.resolution, fine.height), (Resolution::Fine, 600));
    let standard = fit_page(
        &page,
        &caps(&[Compression::Mh], &[Resolution::Standard], &[1728]),
    )
    .expect("fits");
    assert_eq!(
        (standard.resolution, standard.height),
        (Resolution::Standard, 300)
    );
    let pixels = decode(&standard).expect("decodes");
    assert!(pixels == reshape(&bitmap, 1728, Resolution::Standard));
    // The one-row rule at superfine row 5 is still there, in standard row 1.
    assert!(
        (40..1688).all(|x| pixels.get(x, 1)),
        "the thin rule survives"
    );
}

#[test]
fn a3_shrinks_to_a4_when_the_callee_prints_only_a4() {
    let page = encode(&letter(2432, Resolution::Fine), Compression::Mr).expect("encodes");
    let fitted =
        fit_page(&page, &caps(&Compression::ALL, &Resolution::ALL, &[1728])).expect("fits");
    assert_eq!((fitted.width, fitted.compression), (1728, Compression::G4));
    assert_eq!(fitted.height, (600.0_f64 * 1728.0 / 2432.0).round() as u32);
}

#[test]
fn capabilities_and_page_headers_travel_as_json() {
    let all = Capabilities::all();
    let json = serde_json::to_string(&all).expect("serialises");
    assert_eq!(
        json,
        r#"{"compressions":["g4","mr","mh"],"resolutions":["superfine","fine","standard"],"widths":[1728,2048,2432],"max_pages":4294967295}"#
    );
    assert_eq!(
        serde_json::from_str::<Capabilities>(&json).expect("parses"),
        all
    );

    let page = encode(&letter(1728, Resolution::Fine), Compression::G4).expect("encodes");
    let info: PageInfo = page.info();
    let info = serde_json::from_str(&serde_json::to_string(&info).expect("ser")).expect("de");
    let rebuilt = EncodedPage::from_info(&info, page.data.clone()).expect("lengths agree");
    assert_eq!(rebuilt, page);
    assert!(EncodedPage::from_info(&info, vec![1, 2, 3]).is_err());
}

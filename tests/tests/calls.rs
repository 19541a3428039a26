//! Calls that go through: faxsend -> gatewayd -> relayd -> gatewayd -> faxrecv,
//! checked by what users see: exit code, report, files, pixels.

use std::path::{Path, PathBuf};

use common::codec::Resolution;
use harness::Testbed;
use harness::images::{
    assert_same_pages, read_fax, sent_pages, text_bitmap, tiffinfo_errors, write_text_png,
    write_tiff,
};
use serde_json::{Value, json};

/// A four-page document: three pages of a multi-page TIFF (one at standard
/// resolution, which faxsend converts to fine) and a PNG.
fn four_page_document(bed: &Testbed) -> Vec<PathBuf> {
    let tiff = write_tiff(
        &bed.path().join("three-pages.tif"),
        &[
            text_bitmap(1, 1728, 2200, Resolution::Fine),
            text_bitmap(2, 1728, 1100, Resolution::Standard),
            text_bitmap(3, 1728, 2200, Resolution::Fine),
        ],
    );
    let png = write_text_png(&bed.path().join("letter.png"), 4, 1700, 2200);
    vec![tiff, png]
}

/// The JSON description faxrecv writes beside a fax.
fn fax_record(tif: &Path) -> Value {
    let path = tif.with_extension("json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

#[test]
fn multi_page_fax_arrives_pixel_for_pixel_with_a_json_report() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let document = four_page_document(&bed);

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &document)
        .arg("--json")
        .run();

    sent.assert_delivered();
    let report = sent.report();
    assert_eq!(report["result"], "delivered", "{sent}");
    assert_eq!(report["pages_total"], 4, "{sent}");
    assert_eq!(report["pages_confirmed"], 4, "{sent}");
    assert_eq!(report["via"], json!(["relay-a"]), "{sent}");
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("1001"), Some("1002"))
    );
    let call_id = report["call_id"].as_str().expect("a call id").to_owned();

    let faxes = callee.wait_faxes(1);
    assert_eq!(faxes, [callee.inbox().join(format!("{call_id}.tif"))]);
    assert_same_pages(&read_fax(&faxes[0]), &sent_pages(&document));
    assert_eq!(
        tiffinfo_errors(&faxes[0]),
        "",
        "libtiff complains about {:?}",
        faxes[0]
    );
    let record = fax_record(&faxes[0]);
    assert_eq!(record["caller"], "1001");
    assert_eq!(record["callee"], "1002");
    assert_eq!(record["call_id"], call_id.as_str());
    assert_eq!(record["pages"], 4);
    assert_eq!(record["relays"], json!(["relay-a"]));
    assert_eq!(callee.files_ending(".part"), Vec::<PathBuf>::new());
}

#[test]
fn a_pdf_with_cover_page_and_tag_lines_arrives_as_faxsend_draws_it() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);
    let letter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/letter.pdf");
    let extras = [
        "--cover",
        "--from-name",
        "Example Trading",
        "--subject",
        "Invoice 42",
    ];

    let sent = bed
        .faxsend_tagged(&gw1, "1001", "1002", std::slice::from_ref(&letter))
        .args(extras)
        .run();
    sent.assert_delivered();
    assert_eq!(
        sent.report_line("pages"),
        "3 confirmed of 3 sent (3 in the document)"
    );

    // What `faxsend --output` draws for the same command line (same time,
    // same zone: the harness fixes both).
    let preview = bed.path().join("preview.tif");
    let letter_arg = letter.to_str().expect("utf-8 path");
    let preview_arg = preview.to_str().expect("utf-8 path");
    let mut args = vec![letter_arg, "--from", "1001", "--to", "1002"];
    args.extend(extras);
    args.extend(["--output", preview_arg]);
    let wrote = harness::sender::FaxSend::with_args(bed.path(), &args).run();
    assert_eq!(wrote.code, Some(0), "{wrote}");

    let faxes = callee.wait_faxes(1);
    let got = read_fax(&faxes[0]);
    assert_same_pages(&got, &read_fax(&preview));
    // Every page, the cover page too, starts with the tag line's band.
    let band = (0.2_f64 * 196.0).round() as usize * got[0].stride();
    for (i, page) in got.iter().enumerate() {
        assert!(
            page.data()[..band].iter().any(|&b| b != 0),
            "page {} has a tag line",
            i + 1
        );
    }
    assert_eq!(tiffinfo_errors(&faxes[0]), "");
}

#[test]
fn plain_report_and_receiver_line_tell_the_same_call() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &[]);

    let sent = bed.faxsend(&gw1, "1001", "1002", &[bed.note()]).run();

    sent.assert_delivered();
    assert_eq!(sent.report_line("result"), "delivered");
    assert_eq!(sent.report_line("to"), "1002 (from 1001)");
    assert_eq!(
        sent.report_line("pages"),
        "1 confirmed of 1 sent (1 in the document)"
    );
    assert_eq!(sent.report_line("via"), "relay-a");
    assert_eq!(sent.stderr, "", "a delivered fax says nothing on stderr");
    let call_id = sent.report_line("call id").to_owned();
    let faxes = callee.wait_faxes(1);
    assert_eq!(faxes, [callee.inbox().join(format!("{call_id}.tif"))]);
    assert_same_pages(&read_fax(&faxes[0]), &sent_pages(&[bed.note()]));
    // faxrecv prints one line per fax.
    let line = format!("received 1 page from 1001 (call {call_id}) via relay-a: ");
    let stdout = callee.wait_stdout_contains(&line);
    assert!(
        stdout.starts_with(&line),
        "faxrecv printed {stdout:?}, expected {line:?}..."
    );
}

#[test]
fn devices_behind_one_gateway_each_answer_their_own_number() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut a = bed.receiver(&gw1, "1002", &[]);
    let mut b = bed.receiver(&gw1, "1003", &[]);
    let mut c = bed.receiver(&gw1, "1004", &[]);

    // From another gateway to each device of gw1...
    for to in ["1002", "1003", "1004"] {
        bed.faxsend(&gw2, "2001", to, &[bed.note()])
            .run()
            .assert_delivered();
    }
    // ...and between two devices behind the same gateway.
    bed.faxsend(&gw1, "1003", "1002", &[bed.note()])
        .run()
        .assert_delivered();

    let callers = |r: &mut harness::Receiver, n: usize| -> Vec<String> {
        let faxes = r.wait_faxes(n);
        let mut from: Vec<String> = faxes
            .iter()
            .map(|f| {
                let record = fax_record(f);
                assert_eq!(
                    record["callee"],
                    r.number(),
                    "{f:?} landed at the wrong device"
                );
                record["caller"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        from.sort();
        from
    };
    assert_eq!(callers(&mut a, 2), ["1003", "2001"]);
    assert_eq!(callers(&mut b, 1), ["2001"]);
    assert_eq!(callers(&mut c, 1), ["2001"]);
}

#[test]
fn second_login_of_a_number_replaces_the_first() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut first = bed.receiver(&gw2, "1002", &[]);

    // The newer login comes through another gateway: the relay tells the older one.
    let mut second = bed.receiver(&gw1, "1002", &[]);

    assert_eq!(first.wait_exit().code(), Some(5), "{}", first.stderr_tail());
    let said = first.stderr();
    assert!(
        said.contains("faxrecv: replaced"),
        "first faxrecv said:\n{said}"
    );
    bed.faxsend(&gw2, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(second.wait_faxes(1).len(), 1);
    assert_eq!(first.faxes(), Vec::<PathBuf>::new());
}

#[test]
fn second_login_on_the_same_gateway_replaces_the_first() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut first = bed.receiver(&gw2, "1002", &[]);

    let mut second = bed.receiver(&gw2, "1002", &[]);

    assert_eq!(first.wait_exit().code(), Some(5), "{}", first.stderr_tail());
    let said = first.stderr();
    assert!(
        said.contains("faxrecv: replaced"),
        "first faxrecv said:\n{said}"
    );
    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();
    assert_eq!(second.wait_faxes(1).len(), 1);
    assert_eq!(first.faxes(), Vec::<PathBuf>::new());
}

#[test]
fn faxrecv_once_json_prints_the_record_and_exits_0() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--once", "--json"]);

    bed.faxsend(&gw1, "1001", "1002", &[bed.note()])
        .run()
        .assert_delivered();

    let status = callee.wait_exit();
    assert!(
        status.success(),
        "faxrecv --once exited with {status}:\n{}",
        callee.stderr_tail()
    );
    let faxes = callee.faxes();
    assert_eq!(faxes.len(), 1);
    let stdout = callee.stdout();
    let printed: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("faxrecv --json printed {stdout:?}: {e}"));
    assert_eq!(printed, fax_record(&faxes[0]));
}

#[test]
fn faxrecv_png_and_pdf_show_the_received_pages() {
    let bed = Testbed::new();
    let relay = bed.relay("relay-a");
    let gw1 = bed.gateway("gw1", &relay);
    let gw2 = bed.gateway("gw2", &relay);
    let mut callee = bed.receiver(&gw2, "1002", &["--png", "--pdf"]);
    let document = [bed.note(), bed.note()];

    let sent = bed
        .faxsend(&gw1, "1001", "1002", &document)
        .arg("--json")
        .run();
    sent.assert_delivered();
    let call_id = sent.report()["call_id"]
        .as_str()
        .expect("a call id")
        .to_owned();
    callee.wait_faxes(1);
    let want = sent_pages(&document);
    for (n, page) in want.iter().enumerate() {
        let png = callee.inbox().join(format!("{call_id}-p{}.png", n + 1));
        let img = image::open(&png)
            .unwrap_or_else(|e| panic!("{png:?}: {e}"))
            .to_luma8();
        assert_eq!(
            (img.width(), img.height()),
            (page.width(), page.height()),
            "{png:?}"
        );
        let differing = (0..page.height())
            .flat_map(|y| (0..page.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| page.get(x, y) != (img.get_pixel(x, y).0[0] < 128))
            .count();
        assert_eq!(
            differing, 0,
            "{png:?} differs from the sent page in {differing} pixels"
        );
    }
    let pdf = std::fs::read(callee.inbox().join(format!("{call_id}.pdf"))).expect("the PDF");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert_eq!(
        pdf.windows(b"/CCITTFaxDecode".len())
            .filter(|w| w == b"/CCITTFaxDecode")
            .count(),
        2,
        "one Group 4 image per page"
    );
}

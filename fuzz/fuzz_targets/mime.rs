//! The mail reader: any bytes as an incoming mail. It must not panic, and
//! what it accepts keeps its promises: at most MAX_PARTS documents, each
//! with a safe file name (no path separator, no leading dot, no control
//! character, at most 100 bytes, the kind's extension), all names distinct.
//!
//! Run with `-O` as the README says: mail-parser 0.11.9 has a
//! `debug_assert!` that input can reach (a message/rfc822 part whose body is
//! another message/rfc822, inside a multipart), which only debug assertions
//! turn into a crash.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mail::inbound::{MAX_PARTS, read};

fuzz_target!(|data: &[u8]| {
    let Ok(mail) = read(data) else {
        return;
    };
    assert!(mail.documents.len() <= MAX_PARTS);
    let mut names = HashSet::new();
    for document in &mail.documents {
        let name = &document.name;
        assert!(!name.is_empty() && name.len() <= 100, "{name:?}");
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(!name.contains(['/', '\\']), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(
            name.ends_with(&format!(".{}", document.kind.extension())),
            "{name:?}"
        );
        assert!(names.insert(name.clone()), "duplicate {name:?}");
    }
    if let Some(body) = &mail.body_text {
        assert!(!body.trim().is_empty() && body.trim() == body);
    }
});

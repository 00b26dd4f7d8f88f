//! Lenient timestamp parsing and template parsing on arbitrary text: no panic, and every
//! timestamp that parses renders and parses back to the same instant (to the microsecond).
#![no_main]

use hookgate_verify::timestamp::{parse_timestamp, TimestampFormat};
use hookgate_verify::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Template::parse("fuzz", text);
    for format in [TimestampFormat::Auto, TimestampFormat::Unix, TimestampFormat::UnixMs, TimestampFormat::Rfc3339] {
        if let Ok(at) = parse_timestamp(text, format) {
            let rendered = TimestampFormat::Rfc3339.render(at);
            let back = parse_timestamp(&rendered, TimestampFormat::Rfc3339).expect("rendered timestamps parse");
            assert!((back - at).abs() < time::Duration::microseconds(1), "{text:?} -> {rendered}");
        }
    }
});

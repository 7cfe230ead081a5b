//! `parse_ini` must never panic on any text, nor must interpolation of any key, nor the whole
//! `load` path when that text is the ini file.
#![no_main]
use std::ffi::OsString;

use herald::config::{load, parse_ini};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ini) = parse_ini(text) {
        let names: Vec<String> = ini.sections().map(str::to_owned).collect();
        for name in &names {
            for key in ini.keys(name) {
                let _ = ini.get(name, key);
            }
        }
    }
    let args = ["herald", "-i", "fuzz.ini"].map(OsString::from);
    let _ = load(args, &|_| None, &|_| Ok(text.to_owned()));
});

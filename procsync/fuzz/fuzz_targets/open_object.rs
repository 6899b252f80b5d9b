//! Fuzz target: arbitrary bytes as an object file, through the map + validate path of
//! every open, then a query, poll waits and a signal if the file validates. Any panic,
//! hang (libFuzzer's `-timeout`) or crash is a bug: a hostile or corrupt file must only
//! ever produce a clear error or a recovered state.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = procsync::__fuzz_open_object(data);
});

//! `decode_header` never panics, never claims more bytes than it was given, and agrees with
//! itself on any longer input.
#![no_main]
use herald::proto::ws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ws::decode_header(data) {
        Ok(Some((header, n))) => {
            assert!(n >= 2 && n <= ws::MAX_HEADER_LEN && n <= data.len());
            if header.opcode.is_control() {
                assert!(header.fin && header.payload_len <= 125);
            }
            // Extra trailing bytes change nothing.
            let mut longer = data[..n].to_vec();
            longer.push(0);
            assert_eq!(ws::decode_header(&longer), Ok(Some((header, n))));
        }
        Ok(None) => assert!(data.len() < ws::MAX_HEADER_LEN),
        Err(e) => assert_eq!(e.close_code(), ws::CloseCode::Protocol),
    }
});

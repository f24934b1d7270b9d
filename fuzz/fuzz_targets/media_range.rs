//! The `Range` header of `GET /media/{id}` (`media::routes::requested_range`). The first eight
//! bytes are the object's size (big-endian), the rest the header. What is served must lie within
//! the object and be non-empty, or the response's `Content-Range` (`end - 1`) would be wrong.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_api::error::ApiError;
use parley_api::media::routes::requested_range;

fuzz_target!(|data: &[u8]| {
    let Some((size, header)) = data.split_first_chunk::<8>() else { return };
    // Sizes near u64::MAX are as welcome as small ones: overflow is what this looks for.
    let size = u64::from_be_bytes(*size);
    // poem hands the handler header values that are visible ASCII.
    let Ok(header) = std::str::from_utf8(header) else { return };
    match requested_range(Some(header), size) {
        Ok(Some(range)) => {
            assert!(range.start < range.end, "an empty range {range:?} of {size} bytes for {header:?}");
            assert!(range.end <= size, "{range:?} runs past {size} bytes for {header:?}");
        }
        Ok(None) => panic!("a Range header was taken as none: {header:?}"),
        Err(ApiError::RangeNotSatisfiable { size: said }) => assert_eq!(said, size),
        Err(other) => panic!("a Range header got {other:?}"),
    }
});

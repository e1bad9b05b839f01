//! Shared by the splitter targets: a splitter must give the same records
//! (or the same error) whatever the block size, since the host's block
//! boundaries are arbitrary.

use wrun_sdk::Splitter;
use wrun_sdk::testing::split;

/// Split `data[1..]` with a block size taken from `data[0]` and with one
/// block; return the starts after checking they agree.
pub fn consistent_starts<S: Splitter>(data: &[u8]) -> Option<Vec<usize>> {
    let (&size, input) = data.split_first()?;
    let block = usize::from(size % 64) + 1;
    let small = split::<S>(input, block);
    let whole = split::<S>(input, input.len().max(1));
    match (&small, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "records depend on the block size ({block})"),
        (Err(a), Err(b)) => assert_eq!(a, b, "errors depend on the block size ({block})"),
        _ => panic!("block size {block} gives {small:?}, one block gives {whole:?}"),
    }
    for result in [&small, &whole] {
        if let Err(error) = result {
            assert!(
                !error.message().starts_with("splitter reported"),
                "contract violation: {error}"
            );
        }
    }
    let starts = whole.ok()?;
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "starts ascend strictly"
    );
    assert!(
        starts.iter().all(|&s| s < input.len()),
        "starts lie inside the input"
    );
    Some(starts)
}

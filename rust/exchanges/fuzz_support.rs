//! Test support shared by the venues' property tests: mutations of real frames, and one
//! pass of frames through a processor with the checks every venue must pass (each frame
//! accounted for, the maintained book valid, no out-of-range number in an event).

use proptest::prelude::*;

use super::ExchangeProcessor;
use crate::model::Event;

/// A mutation of one seed: truncate, overwrite a byte, insert bytes, or put numbers out of
/// range (huge, negative, `1e400`) where digits were.
pub(crate) fn mutated_from(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        any::<u8>(),
        any::<usize>(),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(seed, op, at, len, bytes)| {
            let mut v = seeds[seed].as_bytes().to_vec();
            let at = at % (v.len() + 1);
            match op % 4 {
                0 => v.truncate(at),
                1 => {
                    if let Some(b) = v.get_mut(at) {
                        *b = bytes.first().copied().unwrap_or(b'9');
                    }
                }
                2 => {
                    let tail = v.split_off(at);
                    v.extend_from_slice(&bytes);
                    v.extend_from_slice(&tail);
                }
                _ => {
                    let digits = b"99999999999999999999999-1e400.";
                    for (i, b) in v.iter_mut().skip(at).take(len % 12).enumerate() {
                        if b.is_ascii_digit() {
                            *b = digits[i % digits.len()];
                        }
                    }
                }
            }
            v
        })
}

/// The processor's `messages` counter (frames handed to it).
fn messages(p: &dyn ExchangeProcessor) -> u64 {
    p.counters()
        .iter()
        .find(|(k, _)| *k == "messages")
        .map_or(0, |(_, v)| *v)
}

/// Feed `frames` (bytes, as lossy UTF-8) to `p` and check what must hold whatever arrived:
/// every frame counted, the first symbol's book valid, and prices and sizes of every event
/// finite and in range.
pub(crate) fn check_frames(
    p: &mut dyn ExchangeProcessor,
    frames: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let before = messages(p);
    let (mut out, mut act) = (Vec::new(), Vec::new());
    for f in frames {
        p.on_frame(&String::from_utf8_lossy(f), 1, &mut out, &mut act);
    }
    prop_assert_eq!(messages(p) - before, frames.len() as u64);
    if let Some(book) = p.symbols().first().and_then(|m| m.book.as_ref()) {
        let check = book.read().check_invariants();
        prop_assert!(check.is_ok(), "{:?}", check);
    }
    let price = |v: f64| v.is_finite() && v > 0.0;
    let size = |v: f64| v.is_finite() && v >= 0.0;
    for ev in &out {
        match ev {
            Event::Trade(t) => prop_assert!(price(t.price) && size(t.size), "{:?}", t),
            Event::Liquidation(l) => prop_assert!(price(l.price) && size(l.size), "{:?}", l),
            Event::Book(d) => prop_assert!(
                d.bids
                    .iter()
                    .chain(&d.asks)
                    .all(|(p, s)| price(*p) && size(*s)),
                "{:?}",
                d
            ),
            _ => {}
        }
    }
    Ok(())
}

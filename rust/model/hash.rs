//! A fast hasher for the hot-path maps whose keys the process chooses itself: subscribed
//! symbol names and symbol identities (addresses of interned metadata). SipHash, the
//! standard maps' default, resists key-flooding by an adversary that picks the keys; here
//! no adversary inserts keys (a venue's unknown symbol is a lookup miss, never an insert),
//! and SipHash cost about 1.5 % of the flat-out profile.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Odd multiplier (2^64 divided by the golden ratio): spreads each word over the high bits.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// Multiply-rotate hasher over 64-bit words.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SPREAD);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        let mut word = [0u8; 8];
        for chunk in &mut words {
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A product's low bits depend only on the factors' low bits, and aligned addresses
        // have zero low bits, while the table picks buckets by the low bits (and a tag by
        // the top 7): fold, multiply and fold again so every bit depends on the whole key.
        let h = self.0 ^ (self.0 >> 32);
        let h = h.wrapping_mul(SPREAD);
        h ^ (h >> 29)
    }
}

/// `HashMap` with [`WordHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;
/// `HashSet` with [`WordHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash_of<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
        BuildHasherDefault::<WordHasher>::default().hash_one(v)
    }

    #[test]
    fn aligned_addresses_spread_over_the_low_bits() {
        // 64 interned-symbol-like addresses, evenly spaced: the low 6 bits pick among 64
        // buckets (random hashes fill about 40), the top 7 the tag; a bare product would put
        // every address 64 bytes apart in bucket 0
        for (base, stride) in [
            (0x7f00_0000_1000u64, 64u64),
            (0x55d0_c0a0_1230, 16),
            (0x7f12_3456_7000, 96),
        ] {
            let hashes: Vec<u64> = (0..64u64).map(|i| hash_of(&(base + i * stride))).collect();
            let buckets: HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
            let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            assert!(
                buckets.len() >= 32,
                "stride {stride}: {} buckets",
                buckets.len()
            );
            assert!(tags.len() >= 32, "stride {stride}: {} tags", tags.len());
        }
    }

    #[test]
    fn names_that_differ_anywhere_hash_apart() {
        let names = [
            "BTCUSDT",
            "ETHUSDT",
            "BTCUSDC",
            "BTCUSDT_PERP",
            "BTC-USDT-SWAP",
            "",
            "A",
        ];
        let hashes: HashSet<u64> = names.iter().map(|n| hash_of(*n)).collect();
        assert_eq!(hashes.len(), names.len());
        // the tail after the last full word counts, as does the length marker
        assert_ne!(hash_of("ABCDEFGHI"), hash_of("ABCDEFGHJ"));
        assert_ne!(hash_of(&("AB", "C")), hash_of(&("A", "BC")));
    }

    #[test]
    fn a_fast_map_behaves_as_a_map() {
        let mut m: FastMap<Box<str>, usize> = FastMap::default();
        for i in 0..1_000 {
            m.insert(format!("SYM{i}").into(), i);
        }
        assert_eq!(m.len(), 1_000);
        assert!((0..1_000).all(|i| m.get(format!("SYM{i}").as_str()) == Some(&i)));
        assert_eq!(m.get("SYM1000"), None);
    }
}

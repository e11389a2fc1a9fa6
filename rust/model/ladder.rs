//! A sorted sequence in bounded chunks: the storage of one book side.
//!
//! A book side is a sorted list changed anywhere by inserts and removals. In one flat `Vec`
//! each of those shifts everything after the changed place: on a deep side (thousands of
//! levels, changes spread over the whole depth) that is tens of kilobytes moved per change.
//! Here the elements live in chunks of at most [`CHUNK`] elements, in order, so a change
//! shifts at most one chunk, and finding the chunk is a binary search over a copy of the
//! chunks' last elements, kept contiguous so the search does not visit every chunk's memory.
//! Reading from the best end walks the chunks backwards, each one contiguous.
//!
//! The order is the caller's: every search takes a comparison like `binary_search_by`'s
//! (how an element compares to the target), and the caller keeps the elements sorted by
//! inserting where a search said. Positions ([`Rung`]) are valid until the next change.

use std::cmp::Ordering;

/// The most elements one chunk holds. A change shifts at most this many; a deeper book
/// has more chunks to search (at 5,000 levels, 79 to 157).
pub const CHUNK: usize = 64;

/// A chunk shrunk below this many elements is merged into a neighbour when the two fit in
/// half a chunk, so the chunk count stays within a small multiple of `len / CHUNK`.
const MERGE_BELOW: usize = CHUNK / 4;

/// Emptied chunks a ladder keeps for reuse: enough for a 4,096-level side.
const SPARE_MAX: usize = 64;

/// The longest step of [`Ladder::search_back`]'s walk back in a chunk before it binary
/// searches the rest (probes at 1, 2, 4 and 8 back).
const GALLOP_STEPS: usize = 8;

/// A position in a [`Ladder`]: chunk and index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rung {
    chunk: u32,
    idx: u32,
}

impl Rung {
    /// The position of element `idx` of chunk `chunk`.
    pub(crate) fn new(chunk: usize, idx: usize) -> Self {
        // a ladder never has 2^32 chunks or elements in a chunk; saturate, never wrap
        Self {
            chunk: u32::try_from(chunk).unwrap_or(u32::MAX),
            idx: u32::try_from(idx).unwrap_or(u32::MAX),
        }
    }

    fn parts(self) -> (usize, usize) {
        (self.chunk as usize, self.idx as usize)
    }
}

/// A sorted sequence stored in chunks of at most [`CHUNK`] elements; no chunk is empty.
#[derive(Debug, Clone)]
pub struct Ladder<T> {
    chunks: Vec<Vec<T>>,
    /// `tails[k]` is a copy of the last element of `chunks[k]`.
    tails: Vec<T>,
    /// Emptied chunks kept for reuse (at most [`SPARE_MAX`]): a book cleared and filled
    /// again from a snapshot takes its chunks back instead of allocating them anew.
    spare: Vec<Vec<T>>,
    len: usize,
}

impl<T: Copy> Default for Ladder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PartialEq for Ladder<T>
where
    T: Copy + PartialEq,
{
    /// Same elements in the same order (the chunk boundaries do not matter).
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Copy> Ladder<T> {
    /// An empty ladder (no allocation until the first insert).
    #[must_use]
    pub fn new() -> Self {
        Self {
            chunks: Vec::new(),
            tails: Vec::new(),
            spare: Vec::new(),
            len: 0,
        }
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no element.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Remove every element.
    pub fn clear(&mut self) {
        while let Some(ch) = self.chunks.pop() {
            self.keep_spare(ch);
        }
        self.tails.clear();
        self.len = 0;
    }

    /// Keep an emptied chunk for reuse, unless enough are kept already.
    fn keep_spare(&mut self, mut ch: Vec<T>) {
        if self.spare.len() < SPARE_MAX {
            ch.clear();
            self.spare.push(ch);
        }
    }

    /// The last element (the best level of a book side).
    #[must_use]
    pub fn last(&self) -> Option<&T> {
        self.tails.last()
    }

    /// Elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Elements from the last one backwards (a book side from its best level).
    pub fn iter_rev(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().rev().flat_map(|c| c.iter().rev())
    }

    /// Where `cmp` (how an element compares to the target, as for `binary_search_by`)
    /// finds the target: `Ok` at an equal element, `Err` where it would be inserted.
    pub fn search(&self, cmp: impl Fn(&T) -> Ordering) -> Result<Rung, Rung> {
        // the first chunk whose last element is not before the target holds it or its place;
        // past every chunk, the place is the end of the last one
        let c = self.tails.partition_point(|l| cmp(l) == Ordering::Less);
        match self.chunks.get(c) {
            Some(ch) => ch
                .binary_search_by(cmp)
                .map(|i| Rung::new(c, i))
                .map_err(|i| Rung::new(c, i)),
            None => Err(match self.chunks.len() {
                0 => Rung::default(),
                n => Rung::new(n - 1, self.chunks.get(n - 1).map_or(0, Vec::len)),
            }),
        }
    }

    /// [`Ladder::search`] for a target at or before `bound` (the end when `None`), walking
    /// back from there: the cost grows with the distance, not with the length.
    ///
    /// Venues list a side's levels in price order (OKX and Binance spot best first; Binance
    /// futures bids worst first, which `OrderBook::set_levels` walks backwards), and the best
    /// is stored last, so taken best first each level of an update sits at or before the
    /// place of the one before it: passing that place as
    /// `bound` makes a run of levels near each other cheap, and levels near the best (most
    /// of them) cheap with `None`. A bound that is wrong (the element there is before the
    /// target) is detected and the full search runs, so the answer is always right.
    pub fn search_back(
        &self,
        bound: Option<Rung>,
        cmp: impl Fn(&T) -> Ordering,
    ) -> Result<Rung, Rung> {
        use Ordering::{Equal, Less};
        let (mut c, mut hi) = match bound {
            Some(r) => r.parts(),
            None => match self.chunks.len().checked_sub(1) {
                Some(c) => (c, self.chunks.get(c).map_or(0, Vec::len)),
                None => return Err(Rung::default()),
            },
        };
        let Some(ch) = self.chunks.get(c) else {
            return self.search(cmp);
        };
        // the element at the bound (past a chunk's end: the next chunk's first) must not be
        // before the target; one equal to it is the answer
        let at_bound = match hi.cmp(&ch.len()) {
            Ordering::Less => ch.get(hi).map(|v| (Rung::new(c, hi), v)),
            Ordering::Equal => self
                .chunks
                .get(c + 1)
                .and_then(|n| n.first())
                .map(|v| (Rung::new(c + 1, 0), v)),
            Ordering::Greater => return self.search(cmp),
        };
        if let Some((at, v)) = at_bound {
            match cmp(v) {
                Less => return self.search(cmp),
                Equal => return Ok(at),
                Ordering::Greater => {}
            }
        }
        // whole chunks back while the target is not after the previous chunk's last; far
        // away, a binary search over the chunks before
        let mut walked = 0;
        while let Some(prev) = c.checked_sub(1) {
            match self.tails.get(prev).map(&cmp) {
                Some(Less) | None => break,
                Some(_) if walked == 2 => {
                    c = self
                        .tails
                        .get(..=prev)
                        .map_or(0, |t| t.partition_point(|l| cmp(l) == Less));
                    hi = self.chunks.get(c).map_or(0, Vec::len);
                    break;
                }
                Some(_) => {
                    c = prev;
                    hi = self.chunks.get(c).map_or(0, Vec::len);
                    walked += 1;
                }
            }
        }
        let Some(ch) = self.chunks.get(c) else {
            return self.search(cmp);
        };
        // gallop back in the chunk (everything at or after `hi` is after the target) for a
        // few steps, then a binary search over what is left: a near target costs a probe or
        // two, a far one no more than a few probes beyond the plain search
        let mut lo = 0;
        let mut step = 1;
        while hi > 0 && step <= GALLOP_STEPS {
            let p = hi.saturating_sub(step);
            match ch.get(p).map(&cmp) {
                Some(Less) => {
                    lo = p + 1;
                    break;
                }
                Some(Equal) => return Ok(Rung::new(c, p)),
                _ => {
                    hi = p;
                    step *= 2;
                }
            }
        }
        match ch.get(lo..hi).map(|s| s.binary_search_by(&cmp)) {
            Some(Ok(j)) => Ok(Rung::new(c, lo + j)),
            Some(Err(j)) => Err(Rung::new(c, lo + j)),
            None => self.search(cmp),
        }
    }

    /// [`Ladder::search`] trying `hint` first (the answer a ladder changed in step with
    /// this one gave): it is checked against its neighbours in O(1), and a wrong hint falls
    /// back to the search. A hint is taken when it is a right answer, so the ladder stays
    /// sorted whatever the hint.
    pub fn search_near(&self, hint: Rung, cmp: impl Fn(&T) -> Ordering) -> Result<Rung, Rung> {
        use Ordering::{Equal, Greater, Less};
        let (c, i) = hint.parts();
        if let Some(ch) = self.chunks.get(c) {
            let at = ch.get(i).map(&cmp);
            if at == Some(Equal) {
                return Ok(hint);
            }
            // the element before the place: in this chunk, else the previous chunk's last
            let before = match i.checked_sub(1) {
                Some(p) => ch.get(p),
                None => c.checked_sub(1).and_then(|p| self.tails.get(p)),
            };
            // past the chunk's end, the element after is the next chunk's first
            let after = match at {
                Some(o) => Some(o),
                None if i == ch.len() => self.chunks.get(c + 1).and_then(|n| n.first()).map(&cmp),
                None => Some(Less), // beyond the end: not a place
            };
            let above = after.is_none_or(|o| o == Greater);
            let below = before.is_none_or(|b| cmp(b) == Less);
            if above && below {
                return Err(hint);
            }
        } else if self.chunks.is_empty() && hint == Rung::default() {
            return Err(hint);
        }
        self.search(cmp)
    }

    /// The element at `at`, if there is one.
    #[must_use]
    pub fn get(&self, at: Rung) -> Option<&T> {
        let (c, i) = at.parts();
        self.chunks.get(c).and_then(|ch| ch.get(i))
    }

    /// Change the element at `at` in place with `f` (which must keep its place in the
    /// order); false when there is no element there.
    pub fn update(&mut self, at: Rung, f: impl FnOnce(&mut T)) -> bool {
        let (c, i) = at.parts();
        let Some(ch) = self.chunks.get_mut(c) else {
            return false;
        };
        let Some(v) = ch.get_mut(i) else {
            return false;
        };
        f(v);
        if i + 1 == ch.len() {
            self.refresh_tail(c);
        }
        true
    }

    /// Insert `v` at `at`, a place a search returned as `Err` (the caller's order holds only
    /// if it is). A full chunk splits in two; inserting past the end of a full last chunk
    /// opens a new one instead, so filling a side in order leaves its chunks full.
    pub fn insert(&mut self, at: Rung, v: T) {
        let (c, i) = at.parts();
        let n_chunks = self.chunks.len();
        let Some(ch) = self.chunks.get_mut(c) else {
            if n_chunks == 0 {
                self.push_chunk(v);
            }
            return;
        };
        let i = i.min(ch.len());
        if ch.len() < CHUNK {
            let at_end = i == ch.len();
            ch.insert(i, v);
            if at_end {
                self.refresh_tail(c);
            }
        } else if i == ch.len() && c + 1 == n_chunks {
            self.push_chunk(v);
            return;
        } else {
            let half = CHUNK / 2;
            let mut tail = take_chunk(&mut self.spare);
            tail.extend(ch.drain(half..));
            if i <= half {
                ch.insert(i, v);
            } else {
                tail.insert(i - half, v);
            }
            if let Some(&last) = tail.last() {
                self.chunks.insert(c + 1, tail);
                self.tails.insert(c + 1, last);
            }
            self.refresh_tail(c);
        }
        self.len += 1;
    }

    /// Remove and return the element at `at`. An emptied chunk goes; a small one is merged
    /// into a neighbour when both fit in half a chunk.
    pub fn remove(&mut self, at: Rung) -> Option<T> {
        let (c, i) = at.parts();
        let ch = self.chunks.get_mut(c)?;
        if i >= ch.len() {
            return None;
        }
        let v = ch.remove(i);
        self.len -= 1;
        let left = ch.len();
        if left == 0 {
            let emptied = self.chunks.remove(c);
            self.tails.remove(c);
            self.keep_spare(emptied);
        } else {
            if i == left {
                self.refresh_tail(c);
            }
            if left < MERGE_BELOW {
                self.merge_small(c);
            }
        }
        Some(v)
    }

    /// A new last chunk holding `v`.
    fn push_chunk(&mut self, v: T) {
        let mut fresh = take_chunk(&mut self.spare);
        fresh.push(v);
        self.chunks.push(fresh);
        self.tails.push(v);
        self.len += 1;
    }

    /// Copy chunk `c`'s last element into `tails`.
    #[inline]
    fn refresh_tail(&mut self, c: usize) {
        if let (Some(t), Some(last)) = (
            self.tails.get_mut(c),
            self.chunks.get(c).and_then(|ch| ch.last()),
        ) {
            *t = *last;
        }
    }

    /// Merge the small chunk `c` with its previous neighbour, else its next one, when the
    /// two fit in half a chunk.
    fn merge_small(&mut self, c: usize) {
        let len_of = |chunks: &[Vec<T>], k: usize| chunks.get(k).map_or(usize::MAX, Vec::len);
        let own = len_of(&self.chunks, c);
        let into = if c > 0 && len_of(&self.chunks, c - 1).saturating_add(own) <= CHUNK / 2 {
            c - 1
        } else if len_of(&self.chunks, c + 1).saturating_add(own) <= CHUNK / 2 {
            c
        } else {
            return;
        };
        // move chunk `into + 1` to the end of chunk `into`, whose last element it now has
        let moved = self.chunks.remove(into + 1);
        let tail = self.tails.remove(into + 1);
        if let (Some(dst), Some(t)) = (self.chunks.get_mut(into), self.tails.get_mut(into)) {
            dst.extend(moved.iter().copied());
            *t = tail;
        }
        self.keep_spare(moved);
    }

    /// Number of chunks (for tests and the layout checks).
    #[must_use]
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

/// A kept chunk, else a new one with room for [`CHUNK`] elements.
fn take_chunk<T>(spare: &mut Vec<Vec<T>>) -> Vec<T> {
    spare.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set `k` in a ladder of unique keys kept ascending (`remove`: take it out).
    fn set(l: &mut Ladder<u32>, k: u32, remove: bool) {
        match l.search(|e| e.cmp(&k)) {
            Ok(at) if remove => {
                assert_eq!(l.remove(at), Some(k));
            }
            Err(at) if !remove => l.insert(at, k),
            _ => {}
        }
    }

    fn check(l: &Ladder<u32>, model: &std::collections::BTreeSet<u32>) {
        let got: Vec<u32> = l.iter().copied().collect();
        let want: Vec<u32> = model.iter().copied().collect();
        assert_eq!(got, want);
        assert_eq!(l.len(), want.len());
        let rev: Vec<u32> = l.iter_rev().copied().collect();
        assert!(rev.iter().eq(want.iter().rev()));
        assert_eq!(l.last(), want.last());
        // no empty chunk, none over the bound, and not more than a small multiple of the
        // fewest chunks that could hold the elements
        assert!(l.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
        let lasts: Vec<u32> = l.chunks.iter().filter_map(|c| c.last().copied()).collect();
        assert_eq!(l.tails, lasts);
        assert!(l.spare.len() <= SPARE_MAX && l.spare.iter().all(Vec::is_empty));
        assert!(l.chunk_count() <= 2 * want.len().div_ceil(MERGE_BELOW).max(1) + 2);
    }

    /// `got` (from a search with a hint or a bound) must be what the plain search finds:
    /// the same element, or a place where inserting `target` keeps the order.
    fn agrees(l: &Ladder<u32>, target: u32, got: Result<Rung, Rung>, how: &str) {
        match (l.search(|e| e.cmp(&target)), got) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "target {target} {how}"),
            (Err(_), Err(at)) => {
                let mut m = l.clone();
                m.insert(at, target);
                let v: Vec<u32> = m.iter().copied().collect();
                assert!(
                    v.windows(2).all(|w| w[0] < w[1]),
                    "{target} {how} at {at:?}"
                );
            }
            (want, _) => panic!("target {target} {how}: {want:?} vs {got:?}"),
        }
    }

    #[test]
    fn random_changes_match_an_ordered_set() {
        // a deterministic mix of inserts and removals over keys 0..3000, against BTreeSet
        let mut l = Ladder::new();
        let mut model = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..60_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = u32::try_from(x % 3000).unwrap();
            // removals dominate in the last third, so chunks shrink and merge
            let remove = if step > 40_000 {
                x % 4 != 0
            } else {
                x % 3 == 0
            };
            set(&mut l, k, remove);
            if remove {
                model.remove(&k);
            } else {
                model.insert(k);
            }
            if step % 997 == 0 {
                check(&l, &model);
            }
        }
        check(&l, &model);
        // filling in order leaves full chunks
        let mut filled = Ladder::new();
        for k in 0..(10 * CHUNK as u32) {
            set(&mut filled, k, false);
        }
        assert_eq!(filled.chunk_count(), 10);
        // cleared and filled again, it takes its chunks back
        filled.clear();
        assert_eq!(filled.spare.len(), 10);
        for k in 0..(10 * CHUNK as u32) {
            set(&mut filled, k, false);
        }
        assert_eq!((filled.chunk_count(), filled.spare.len()), (10, 0));
    }

    #[test]
    fn hints_are_taken_only_when_right() {
        // every hint, right or wrong, must give what the search gives, on a ladder of
        // several chunks (so hints fall on chunk edges too)
        let mut base = Ladder::new();
        for k in (0..400u32).map(|k| k * 2) {
            set(&mut base, k, false);
        }
        // split the in-order chunks, so some are not full
        for k in [1u32, 3, 129, 131, 255] {
            set(&mut base, k, false);
        }
        assert!(base.chunk_count() > 3);
        let places: Vec<Rung> = (0..base.chunk_count())
            .flat_map(|c| (0..=CHUNK + 1).map(move |i| Rung::new(c, i)))
            .chain([Rung::new(999, 0), Rung::default()])
            .collect();
        for target in [
            0u32, 1, 2, 5, 64, 127, 128, 130, 254, 256, 797, 798, 799, 1000,
        ] {
            for &hint in &places {
                let got = base.search_near(hint, |e| e.cmp(&target));
                agrees(&base, target, got, &format!("hint {hint:?}"));
            }
        }
        // an empty ladder takes the default place
        let empty: Ladder<u32> = Ladder::new();
        assert_eq!(
            empty.search_near(Rung::new(3, 3), |e| e.cmp(&1)),
            Err(Rung::default())
        );
    }

    #[test]
    fn searching_back_from_any_bound_finds_what_the_search_finds() {
        // a ladder of chunks of varied fill: even keys 0..2000, then some removed
        let mut l = Ladder::new();
        for k in (0..1000u32).map(|k| k * 2) {
            set(&mut l, k, false);
        }
        for k in (0..2000u32).step_by(14) {
            set(&mut l, k, true);
        }
        for k in [1u32, 3, 5, 601, 603, 1201] {
            set(&mut l, k, false);
        }
        let bounds: Vec<Option<Rung>> = (0..=l.chunk_count())
            .flat_map(|c| (0..=CHUNK + 1).map(move |i| Some(Rung::new(c, i))))
            .chain([None])
            .collect();
        for target in [
            0u32, 1, 2, 4, 6, 7, 100, 601, 602, 640, 1200, 1998, 1999, 2500,
        ] {
            for &bound in &bounds {
                let got = l.search_back(bound, |e| e.cmp(&target));
                agrees(&l, target, got, &format!("bound {bound:?}"));
            }
        }
        // levels best first (descending keys), each search bounded by the last place
        let mut m = l.clone();
        let mut model: std::collections::BTreeSet<u32> = l.iter().copied().collect();
        let mut bound = None;
        for (n, k) in (0..2100u32).rev().step_by(3).enumerate() {
            let remove = n % 3 == 0;
            let at = match m.search_back(bound, |e| e.cmp(&k)) {
                Ok(at) if remove => {
                    m.remove(at);
                    at
                }
                Err(at) if !remove => {
                    m.insert(at, k);
                    at
                }
                Ok(at) | Err(at) => at,
            };
            bound = Some(at);
            if remove {
                model.remove(&k);
            } else {
                model.insert(k);
            }
        }
        check(&m, &model);
        let empty: Ladder<u32> = Ladder::new();
        assert_eq!(empty.search_back(None, |e| e.cmp(&1)), Err(Rung::default()));
    }

    #[test]
    fn bad_positions_change_nothing() {
        let mut l = Ladder::new();
        for k in 0..10u32 {
            set(&mut l, k, false);
        }
        assert_eq!(l.remove(Rung::new(0, 10)), None);
        assert_eq!(l.remove(Rung::new(5, 0)), None);
        l.insert(Rung::new(7, 0), 99); // no such chunk, not the end: ignored
        assert_eq!(l.len(), 10);
        assert!(l.get(Rung::new(0, 10)).is_none());
        assert!(!l.update(Rung::new(0, 10), |v| *v = 0));
        // an update of the last element keeps the copy the search uses
        assert!(l.update(Rung::new(0, 9), |v| *v = 20));
        assert_eq!(l.last(), Some(&20));
        assert_eq!(l.search(|e| e.cmp(&20)), Ok(Rung::new(0, 9)));
        l.clear();
        assert!(l.is_empty() && l.chunk_count() == 0 && l.last().is_none());
    }
}

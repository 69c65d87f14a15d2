//! Owns the read-in-place hash table the model file stores resources in: keys are 64-bit
//! hashes, split into a bucket (top 16 bits) and a 32-bit check (the next 32 bits).
//!
//! The table is three flat arrays, `dir` (bucket starts, `BUCKETS + 1` entries), `keys` and
//! `vals` (sorted by bucket, then key), so it is used straight from the file's bytes. A lookup
//! reads one directory pair and scans a few neighbouring keys; 48 bits tell keys apart.

use super::simd::prefetch;

/// Number of buckets (the top 16 bits of a hash).
pub const BUCKETS: usize = 1 << 16;

/// A table over borrowed arrays.
#[derive(Debug, Clone, Copy)]
pub struct TableView<'a, V> {
    pub dir: &'a [u32],
    pub keys: &'a [u32],
    pub vals: &'a [V],
}

#[inline]
fn split(h: u64) -> (usize, u32) {
    ((h >> 48) as usize, (h >> 16) as u32)
}

impl<V: Copy> TableView<'_, V> {
    /// Returns the value stored for hash `h`.
    #[inline]
    pub fn get(&self, h: u64) -> Option<V> {
        let (b, k) = split(h);
        let (lo, hi) = (self.dir[b] as usize, self.dir[b + 1] as usize);
        let at = self.keys.get(lo..hi)?.iter().position(|&x| x == k)?;
        self.vals.get(lo + at).copied()
    }

    /// Asks the CPU to start loading the directory entry of hash `h` (a hint: lookups of many
    /// hashes overlap their cache misses when every entry is asked for first).
    #[inline]
    pub fn prefetch_dir(&self, h: u64) {
        prefetch(self.dir.as_ptr().wrapping_add(split(h).0).cast());
    }

    /// Asks the CPU to start loading the first key of hash `h`'s bucket; reads the directory
    /// entry, so call it after [`Self::prefetch_dir`] had time to bring it in.
    #[inline]
    pub fn prefetch_keys(&self, h: u64) {
        if let Some(&lo) = self.dir.get(split(h).0) {
            prefetch(self.keys.as_ptr().wrapping_add(lo as usize).cast());
        }
    }

    /// Returns whether the arrays form a table whose lookups stay in bounds.
    pub fn is_well_formed(&self) -> bool {
        self.dir.len() == BUCKETS + 1
            && self.dir[0] == 0
            && self.dir.windows(2).all(|w| w[0] <= w[1])
            && self.dir[BUCKETS] as usize == self.keys.len()
            && self.keys.len() == self.vals.len()
    }
}

/// An owned table, built from `(hash, value)` pairs.
#[derive(Debug, Clone)]
pub struct Table<V> {
    pub dir: Vec<u32>,
    pub keys: Vec<u32>,
    pub vals: Vec<V>,
}

impl<V: Copy> Table<V> {
    /// Builds a table; pairs with equal 48-bit keys are merged by `merge(old, new)` in input
    /// order. Returns the table and how many distinct 64-bit hashes had to share a key.
    pub fn build(pairs: &[(u64, V)], merge: impl Fn(V, V) -> V) -> (Self, usize) {
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        // Stable, so merges see pairs in input order.
        order.sort_by_key(|&i| split(pairs[i].0));
        let mut t = Self {
            dir: vec![0; BUCKETS + 1],
            keys: Vec::with_capacity(pairs.len()),
            vals: Vec::with_capacity(pairs.len()),
        };
        let mut last: Option<(usize, u32, u64)> = None;
        let mut shared = 0;
        for i in order {
            let (h, v) = pairs[i];
            let (b, k) = split(h);
            if let Some((lb, lk, lh)) = last {
                if (lb, lk) == (b, k) {
                    let old = t.vals.last_mut().expect("a previous pair was pushed");
                    *old = merge(*old, v);
                    shared += usize::from(lh != h);
                    continue;
                }
            }
            t.dir[b + 1] += 1;
            t.keys.push(k);
            t.vals.push(v);
            last = Some((b, k, h));
        }
        for b in 0..BUCKETS {
            t.dir[b + 1] += t.dir[b];
        }
        (t, shared)
    }

    /// Returns a view over the owned arrays.
    pub fn view(&self) -> TableView<'_, V> {
        TableView {
            dir: &self.dir,
            keys: &self.keys,
            vals: &self.vals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::features::mix;

    #[test]
    fn finds_what_was_built_and_nothing_else() {
        let pairs: Vec<(u64, u16)> = (0..5000u64).map(|i| (mix(i), i as u16)).collect();
        let (t, shared) = Table::build(&pairs, |_, new| new);
        assert_eq!(shared, 0);
        let v = t.view();
        assert!(v.is_well_formed());
        for &(h, x) in &pairs {
            assert_eq!(v.get(h), Some(x));
        }
        assert_eq!(v.get(mix(99_999)), None);
        let (t, _) = Table::build(&[(7, 1u8), (7, 2)], |a, b| a | b);
        assert_eq!(t.view().get(7), Some(3));
    }
}

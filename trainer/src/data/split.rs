//! The held-out split: about 2% of the images, chosen by a hash of each relative path, so
//! adding files never moves an old image between training and evaluation.

use sha2::{Digest, Sha256};

/// Held out when `hash(relative path) % HELDOUT_MODULUS < HELDOUT_BELOW`: 2%.
const HELDOUT_MODULUS: u64 = 10_000;
const HELDOUT_BELOW: u64 = 200;

/// Image indices (into `names`, ascending) held out for evaluation: those whose name hashes into
/// the lowest 2%; with 2 or more images at least one is held out and at least one is kept.
pub(super) fn heldout_indices(names: &[String]) -> Vec<usize> {
    let buckets: Vec<u64> = names
        .iter()
        .map(|name| {
            let digest = Sha256::new().chain_update(b"heldout").chain_update(name).finalize();
            u64::from_le_bytes(std::array::from_fn(|i| digest[i])) % HELDOUT_MODULUS
        })
        .collect();
    let mut heldout: Vec<usize> =
        (0..names.len()).filter(|&i| buckets[i] < HELDOUT_BELOW).collect();
    if names.len() >= 2 && heldout.is_empty() {
        heldout.extend((0..names.len()).min_by_key(|&i| (buckets[i], i)));
    } else if names.len() >= 2 && heldout.len() == names.len() {
        let kept = (0..names.len()).max_by_key(|&i| (buckets[i], i));
        heldout.retain(|&i| Some(i) != kept);
    }
    heldout
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::data::test_support::{TempDir, numbers_of, packed, write_numbered};

    #[test]
    fn heldout_split_is_stable_when_a_file_is_added() {
        let dir = TempDir::new("heldout");
        write_numbered(&dir.images(), 0..400);
        let before = dir.load(1).unwrap();
        let old: BTreeSet<u32> = numbers_of(&before.heldout()).into_iter().collect();
        assert!((3..=16).contains(&old.len()), "about 2% of 400 held out, got {}", old.len());
        write_numbered(&dir.images(), 400..440);
        let after = dir.load(1).unwrap();
        let new: BTreeSet<u32> = numbers_of(&after.heldout()).into_iter().collect();
        assert!(old.is_subset(&new), "{old:?} vs {new:?}");
        assert!(new.difference(&old).all(|&n| n >= 400), "{old:?} vs {new:?}");
        assert_eq!(after.len_train() + after.len_heldout(), 440);
    }

    #[test]
    fn heldout_is_about_two_percent_and_never_empties_either_part() {
        for count in 2..60 {
            let dataset = packed(count);
            assert!(dataset.len_heldout() >= 1 && dataset.len_train() >= 1, "{count} images");
        }
        assert_eq!((packed(1).len_train(), packed(1).len_heldout()), (1, 0));
        let share = packed(20_000).len_heldout() as f64 / 20_000.0;
        assert!((0.017..0.023).contains(&share), "held-out share {share}");
    }
}

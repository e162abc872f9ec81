//! Batches: a pure function of `(seed, step)`, so resuming training needs no RNG state; and
//! the held-out images as values for evaluation.

use ddpm_avatars::image::byte_to_value;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use super::ImageDataset;

/// One training batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `batch_size * 3 * size * size` values in [-1, 1], planar CHW per image.
    pub values: Vec<f32>,
    /// For each slot, the index of its image among the training images (`0..len_train()`).
    pub indices: Vec<usize>,
}

impl ImageDataset {
    /// The batch for `step` of a run seeded with `seed`, computed from `(seed, step)` alone.
    ///
    /// Slot `k` takes training position `p = step * batch_size + k`; epoch `p / len_train()`
    /// visits every training image once, in a Fisher-Yates order seeded by `(seed, epoch)`, so a
    /// batch may span two epochs. Each slot is flipped horizontally with probability 1/2,
    /// decided by `(seed, step, k)`.
    pub fn batch(&self, seed: u64, step: u64, batch_size: usize) -> Batch {
        let image_bytes = 3 * self.image_size * self.image_size;
        let train_count = self.train.len() as u128;
        let mut values = vec![0.0; batch_size * image_bytes];
        let mut indices = Vec::with_capacity(batch_size);
        let mut order: Option<(u64, Vec<usize>)> = None;
        let mut flips = derived_rng(b"flip", seed, step);
        let mut flip_bits = 0;
        for (slot, image_values) in values.chunks_exact_mut(image_bytes).enumerate() {
            let position = u128::from(step) * batch_size as u128 + slot as u128;
            // Truncation only matters past 2^64 epochs.
            let epoch = (position / train_count) as u64;
            let within_epoch = (position % train_count) as usize;
            if order.as_ref().is_none_or(|(cached, _)| *cached != epoch) {
                order = Some((epoch, epoch_order(seed, epoch, self.train.len())));
            }
            let train_index = order.as_ref().map_or(0, |(_, order)| order[within_epoch]);
            if slot % 64 == 0 {
                flip_bits = flips.next_u64();
            }
            let flip = (flip_bits >> (slot % 64)) & 1 == 1;
            let image = self.train[train_index];
            let bytes = &self.pixels[image * image_bytes..(image + 1) * image_bytes];
            write_values(bytes, self.image_size, flip, image_values);
            indices.push(train_index);
        }
        Batch { values, indices }
    }

    /// Values of all held-out images in order, `len_heldout() * 3 * size * size`, planar CHW.
    pub fn heldout(&self) -> Vec<f32> {
        let image_bytes = 3 * self.image_size * self.image_size;
        let mut values = vec![0.0; self.heldout.len() * image_bytes];
        for (&image, image_values) in self.heldout.iter().zip(values.chunks_exact_mut(image_bytes))
        {
            let bytes = &self.pixels[image * image_bytes..(image + 1) * image_bytes];
            write_values(bytes, self.image_size, false, image_values);
        }
        values
    }
}

/// Writes one planar CHW image as values into `out`, mirrored left-right when `flip`.
fn write_values(bytes: &[u8], size: usize, flip: bool, out: &mut [f32]) {
    for (row, out_row) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(size)) {
        if flip {
            for (value, &byte) in out_row.iter_mut().zip(row.iter().rev()) {
                *value = byte_to_value(byte);
            }
        } else {
            for (value, &byte) in out_row.iter_mut().zip(row) {
                *value = byte_to_value(byte);
            }
        }
    }
}

/// A ChaCha8 generator for one purpose (`domain`), one seed and one stream.
fn derived_rng(domain: &[u8], seed: u64, stream: u64) -> ChaCha8Rng {
    let key = Sha256::new().chain_update(domain).chain_update(seed.to_le_bytes()).finalize();
    let mut rng = ChaCha8Rng::from_seed(key.into());
    rng.set_stream(stream);
    rng
}

/// The training order of `epoch`: a Fisher-Yates shuffle of `0..count`.
fn epoch_order(seed: u64, epoch: u64, count: usize) -> Vec<usize> {
    let mut rng = derived_rng(b"epoch", seed, epoch);
    let mut order: Vec<usize> = (0..count).collect();
    for last in (1..count).rev() {
        let pick = uniform_below(&mut rng, last as u64 + 1) as usize;
        order.swap(last, pick);
    }
    order
}

/// An unbiased integer in `0..bound` (Lemire 2019, "Fast random integer generation in an
/// interval": multiply-shift, rejecting the few low products that would bias it).
fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(bound);
        if product as u64 >= threshold {
            return (product >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use ddpm_avatars::image::byte_to_value;

    use super::write_values;
    use crate::data::ImageDataset;
    use crate::data::test_support::packed;

    #[test]
    fn values_are_bytes_mapped_to_minus_one_to_one() {
        let dataset = ImageDataset::from_packed(1, vec![0, 255, 51, 0, 0, 0]).unwrap();
        let batch = dataset.batch(0, 0, 1);
        let image = dataset.train[batch.indices[0]];
        let expected: Vec<f32> =
            dataset.pixels[image * 3..][..3].iter().map(|&b| f32::from(b) / 127.5 - 1.0).collect();
        assert_eq!(batch.values, expected);
        assert_eq!((byte_to_value(0), byte_to_value(255)), (-1.0, 1.0));
        assert_eq!(dataset.heldout().len(), 3 * dataset.len_heldout());
    }

    #[test]
    fn batches_are_deterministic_for_seed_and_step_and_differ_across_steps() {
        let dataset = packed(50);
        let batch = dataset.batch(7, 3, 16);
        assert_eq!(batch.values.len(), 16 * 3 * 16);
        assert_eq!(batch, dataset.batch(7, 3, 16));
        assert_ne!(batch.indices, dataset.batch(7, 4, 16).indices);
        assert_ne!(batch.indices, dataset.batch(8, 3, 16).indices);
        assert!(batch.values.iter().all(|value| (-1.0..=1.0).contains(value)));
    }

    #[test]
    fn each_epoch_covers_every_training_image_once() {
        let dataset = packed(50);
        let count = dataset.len_train();
        let batch_size = 7; // does not divide `count`, so batches span epochs
        let steps = (3 * count).div_ceil(batch_size) as u64;
        let order: Vec<usize> =
            (0..steps).flat_map(|step| dataset.batch(5, step, batch_size).indices).collect();
        let epochs: Vec<&[usize]> = order.chunks(count).take(3).collect();
        for epoch in &epochs {
            let mut sorted = epoch.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..count).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1], "each epoch has its own order");
    }

    #[test]
    fn flips_happen_for_about_half_of_the_slots() {
        let dataset = packed(50);
        let image_bytes = 48;
        let mut flipped = 0;
        let mut slots = 0;
        for step in 0..40 {
            let batch = dataset.batch(11, step, 64);
            for (slot, values) in batch.values.chunks_exact(image_bytes).enumerate() {
                let image = dataset.train[batch.indices[slot]];
                let bytes = &dataset.pixels[image * image_bytes..][..image_bytes];
                let (mut plain, mut mirrored) = (vec![0.0; image_bytes], vec![0.0; image_bytes]);
                write_values(bytes, 4, false, &mut plain);
                write_values(bytes, 4, true, &mut mirrored);
                assert!(values == plain || values == mirrored);
                flipped += usize::from(values == mirrored);
                slots += 1;
            }
        }
        let share = flipped as f64 / slots as f64;
        assert!((0.45..0.55).contains(&share), "{flipped} of {slots} flipped");
    }
}

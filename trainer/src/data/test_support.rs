//! Test helpers shared by the data modules' tests: temporary image folders and small
//! synthetic datasets.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{Rgb, RgbImage};

use super::ImageDataset;

/// A fresh folder under the system temp dir, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join(format!("ddpm-data-test-{name}-{}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(path.join("images")).unwrap();
        TempDir(path)
    }

    pub(super) fn images(&self) -> PathBuf {
        self.0.join("images")
    }

    pub(super) fn cache(&self) -> PathBuf {
        self.0.join("runs/test/dataset-8.cache")
    }

    pub(super) fn load(&self, min_images: usize) -> anyhow::Result<ImageDataset> {
        ImageDataset::load(&self.images(), 8, &self.cache(), min_images)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Saves `image` at `path`, creating its folder.
pub(super) fn save(image: &RgbImage, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save(path).unwrap();
}

/// 8x8 image number `n`: red and green spell `n`, blue rises left to right (so a flip shows).
pub(super) fn numbered(n: u32) -> RgbImage {
    RgbImage::from_fn(8, 8, |x, _| Rgb([(n % 256) as u8, (n / 256) as u8, (x * 30) as u8]))
}

/// Writes `img-NNNN.png` for each number.
pub(super) fn write_numbered(folder: &Path, numbers: Range<u32>) {
    for n in numbers {
        save(&numbered(n), &folder.join(format!("img-{n:04}.png")));
    }
}

/// The byte a value in [-1, 1] came from.
fn value_to_byte(value: f32) -> u8 {
    ((value + 1.0) * 127.5).round() as u8
}

/// The number of each 8x8 numbered image in planar values.
pub(super) fn numbers_of(values: &[f32]) -> Vec<u32> {
    values
        .chunks_exact(3 * 64)
        .map(|image| u32::from(value_to_byte(image[0])) + 256 * u32::from(value_to_byte(image[64])))
        .collect()
}

/// `count` distinct, left-right asymmetric 4x4 images.
pub(super) fn packed(count: usize) -> ImageDataset {
    let pixels = (0..count * 48).map(|i| ((i / 48) * 7 + (i % 48) * 5) as u8).collect();
    ImageDataset::from_packed(4, pixels).unwrap()
}

//! Training images: a folder of PNG/JPEG/WebP files decoded once into a packed `u8` set.
//!
//! - `scan`: the folder walk (recursive, sorted, image extensions only) and its fingerprint;
//! - `decode`: each image centre-cropped to a square, alpha composited over white, resized
//!   to `image_size` with Lanczos3; files that fail to decode are skipped and counted in the
//!   [`LoadReport`];
//! - `cache`: the decoded set in one file (header + planar CHW bytes) keyed by the folder's
//!   fingerprint, so the next load is a single read;
//! - `split`: about 2% held out for evaluation, chosen by a hash of each relative path, so
//!   adding files never moves an old image between the two parts;
//! - `batches`: batches as a pure function of `(seed, step)`, so resuming training needs no
//!   RNG state.

use std::path::Path;

use anyhow::bail;

mod batches;
mod cache;
mod decode;
mod scan;
mod split;
#[cfg(test)]
mod test_support;

pub use batches::Batch;

/// What [`ImageDataset::load`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Images decoded and usable (training + held out).
    pub loaded: usize,
    /// Files with an image extension that could not be read or decoded.
    pub skipped: usize,
    /// The first few skipped files: `"relative/path.png (reason)"`.
    pub first_skipped: Vec<String>,
    /// Whether the images came from the cache file rather than from decoding the folder.
    pub from_cache: bool,
}

/// Decoded training and held-out images, all `3 x image_size x image_size` bytes.
pub struct ImageDataset {
    image_size: usize,
    /// Every image in sorted-path order, planar CHW, `3 * image_size^2` bytes each.
    pixels: Vec<u8>,
    /// Indices into `pixels` (in images) of the training images, ascending.
    train: Vec<usize>,
    /// Indices into `pixels` (in images) of the held-out images, ascending.
    heldout: Vec<usize>,
    report: LoadReport,
}

impl ImageDataset {
    /// Loads every PNG/JPEG/WebP image under `folder` at `image_size x image_size`, reusing
    /// `cache_path` when it was written for the same folder contents and size, and rewriting it
    /// otherwise.
    ///
    /// Errors when the folder is missing or holds no decodable image, or when fewer than
    /// `min_images` (one batch) images remain for training. Cache problems never fail a load:
    /// a bad cache is reported on stderr and rebuilt.
    pub fn load(
        folder: &Path,
        image_size: usize,
        cache_path: &Path,
        min_images: usize,
    ) -> anyhow::Result<ImageDataset> {
        if image_size == 0 || image_size > 4096 {
            bail!("image size {image_size} is out of range (1..=4096)");
        }
        if folder.is_file() {
            return Self::load_dataset_file(folder, image_size, min_images);
        }
        if !folder.is_dir() {
            bail!("image folder {} does not exist", folder.display());
        }
        let mut files = Vec::new();
        scan::collect_image_files(folder, "", &mut files)?;
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        if files.is_empty() {
            bail!(
                "no PNG, JPEG or WebP images found in {} (searched recursively)",
                folder.display()
            );
        }
        let fingerprint = scan::folder_fingerprint(&files);

        let dataset = match cache::read_cache(cache_path, image_size, Some(&fingerprint)) {
            Ok(dataset) => dataset,
            Err(reason) => {
                if let Some(reason) = reason {
                    eprintln!("dataset cache {}: {reason}; rebuilding it", cache_path.display());
                }
                let dataset = decode::decode_folder(folder, &files, image_size)?;
                if let Err(error) = cache::write_cache(cache_path, &dataset, &fingerprint) {
                    eprintln!("could not write dataset cache {}: {error}", cache_path.display());
                }
                dataset
            }
        };
        dataset.check_enough(folder, min_images)?;
        Ok(dataset)
    }

    /// A dataset file given in place of a folder: a folder's cache (`RUN/dataset-64.cache`,
    /// or `trainer eval --cache FILE`), whose decoded images are 10x smaller under xz than
    /// the folder's PNGs. What `make gpu-pack` carries to a GPU machine.
    fn load_dataset_file(
        path: &Path,
        image_size: usize,
        min_images: usize,
    ) -> anyhow::Result<ImageDataset> {
        let dataset = cache::read_cache(path, image_size, None).map_err(|reason| {
            anyhow::anyhow!(
                "{} is a file, so it must be a dataset file written by the trainer (a run's \
                 dataset-{image_size}.cache): {}",
                path.display(),
                reason.unwrap_or_else(|| "it vanished".into())
            )
        })?;
        dataset.check_enough(path, min_images)?;
        Ok(dataset)
    }

    /// Errors when fewer than `min_images` (one batch) remain for training.
    fn check_enough(&self, source: &Path, min_images: usize) -> anyhow::Result<()> {
        if self.len_train() < min_images {
            let report = &self.report;
            bail!(
                "{} has {} usable images ({} for training, {} held out, {} skipped), but training \
                 needs at least {min_images} training images (one batch)",
                source.display(),
                report.loaded,
                self.len_train(),
                self.len_heldout(),
                report.skipped
            );
        }
        Ok(())
    }

    /// An in-memory set of `pixels.len() / (3 * image_size^2)` images (planar CHW bytes each),
    /// split like a folder whose files are named `packed/0`, `packed/1`, ...
    pub fn from_packed(image_size: usize, pixels: Vec<u8>) -> anyhow::Result<ImageDataset> {
        let image_bytes = 3 * image_size * image_size;
        if image_bytes == 0 || pixels.is_empty() || !pixels.len().is_multiple_of(image_bytes) {
            bail!(
                "{} packed bytes are not a whole, non-zero number of 3x{image_size}x{image_size} \
                 images",
                pixels.len()
            );
        }
        let names: Vec<String> =
            (0..pixels.len() / image_bytes).map(|index| format!("packed/{index}")).collect();
        let heldout = split::heldout_indices(&names);
        let report = LoadReport {
            loaded: names.len(),
            skipped: 0,
            first_skipped: vec![],
            from_cache: false,
        };
        Ok(ImageDataset::new(image_size, pixels, heldout, report))
    }

    fn new(image_size: usize, pixels: Vec<u8>, heldout: Vec<usize>, report: LoadReport) -> Self {
        let count = pixels.len() / (3 * image_size * image_size);
        let train = (0..count).filter(|index| heldout.binary_search(index).is_err()).collect();
        ImageDataset { image_size, pixels, train, heldout, report }
    }

    /// What the load found: counts, skipped names, whether the cache was used.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Side length in pixels of every image.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// Number of training images (at least 1).
    pub fn len_train(&self) -> usize {
        self.train.len()
    }

    /// Number of held-out images: 2% of the set, at least 1 when it holds 2 or more images.
    pub fn len_heldout(&self) -> usize {
        self.heldout.len()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::ImageDataset;
    use super::test_support::{TempDir, write_numbered};

    #[test]
    fn empty_folder_is_an_error_naming_the_folder() {
        let dir = TempDir::new("empty");
        fs::write(dir.images().join("notes.txt"), b"no images here").unwrap();
        let error = format!("{:#}", dir.load(1).err().unwrap());
        assert!(error.contains("no PNG, JPEG or WebP images"), "{error}");
        assert!(error.contains(&dir.images().display().to_string()), "{error}");
    }

    #[test]
    fn missing_folder_is_an_error_naming_the_folder() {
        let dir = TempDir::new("missing");
        let missing = dir.0.join("no-such-folder");
        let error = ImageDataset::load(&missing, 8, &dir.cache(), 1).err().unwrap().to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }

    #[test]
    fn fewer_training_images_than_a_batch_is_an_error_with_the_counts() {
        let dir = TempDir::new("few");
        write_numbered(&dir.images(), 0..5);
        fs::write(dir.images().join("bad.png"), b"junk").unwrap();
        let error = dir.load(16).err().unwrap().to_string();
        assert!(error.contains(&dir.images().display().to_string()), "{error}");
        assert!(error.contains("5 usable images"), "{error}");
        assert!(error.contains("1 skipped") && error.contains("at least 16"), "{error}");
        assert!(dir.load(4).is_ok());
    }

    #[test]
    fn from_packed_rejects_a_partial_image() {
        assert!(ImageDataset::from_packed(4, vec![0; 47]).is_err());
        assert!(ImageDataset::from_packed(4, vec![]).is_err());
        assert!(ImageDataset::from_packed(0, vec![0; 3]).is_err());
    }
}

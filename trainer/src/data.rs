//! Training images: a folder of PNG/JPEG/WebP files decoded once into a packed `u8` set.
//!
//! Loading walks the folder recursively in sorted order, centre-crops each image to a square,
//! composites any alpha over white and resizes to `image_size` with Lanczos3. Files whose
//! extension is not an image's are ignored; image files that fail to decode are skipped and
//! counted in the [`LoadReport`]. The decoded set is cached in one file (header + planar CHW
//! bytes) keyed by a fingerprint of the folder, so the next load is a single read.
//!
//! About 2% of the images are held out for evaluation, chosen by a hash of each relative path, so
//! adding files never moves an old image between the two parts. Batches are a pure function of
//! `(seed, step)`: resuming training needs no RNG state.

use std::fs::{self, File};
use std::io::{self, BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use anyhow::{Context, bail};
use ddpm_avatars::image::byte_to_value;
use image::DynamicImage;
use image::imageops::{self, FilterType};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name extensions (lower case) of the images a folder may hold.
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];
/// How many skipped file names the report keeps.
const MAX_SKIPPED_NAMES: usize = 5;
/// Held out when `hash(relative path) % HELDOUT_MODULUS < HELDOUT_BELOW`: 2%.
const HELDOUT_MODULUS: u64 = 10_000;
const HELDOUT_BELOW: u64 = 200;
/// First bytes of a cache file.
const CACHE_MAGIC: [u8; 8] = *b"DDPMDSET";
/// Bump when the cache layout or the decoding (crop, filter, alpha) changes.
const CACHE_VERSION: u32 = 1;
/// A header larger than this is corrupt (it holds a few hundred numbers and names).
const MAX_HEADER_BYTES: u32 = 16 << 20;

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

/// One training batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `batch_size * 3 * size * size` values in [-1, 1], planar CHW per image.
    pub values: Vec<f32>,
    /// For each slot, the index of its image among the training images (`0..len_train()`).
    pub indices: Vec<usize>,
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

/// The cache file's JSON header, after magic, version and header length.
#[derive(Serialize, Deserialize)]
struct CacheHeader {
    image_size: usize,
    count: usize,
    /// [`folder_fingerprint`] of the folder the images came from, hex.
    fingerprint: String,
    heldout: Vec<usize>,
    skipped: usize,
    first_skipped: Vec<String>,
}

/// An image file found in the folder.
struct ImageFile {
    path: PathBuf,
    /// Path relative to the folder, `/`-separated: the sort key and the held-out hash input.
    relative: String,
    len: u64,
    modified_ns: u128,
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
        if !folder.is_dir() {
            if folder.exists() {
                bail!("image folder {} is not a folder", folder.display());
            }
            bail!("image folder {} does not exist", folder.display());
        }
        let mut files = Vec::new();
        collect_image_files(folder, "", &mut files)?;
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        if files.is_empty() {
            bail!(
                "no PNG, JPEG or WebP images found in {} (searched recursively)",
                folder.display()
            );
        }
        let fingerprint = folder_fingerprint(&files);

        let dataset = match read_cache(cache_path, image_size, &fingerprint) {
            Ok(dataset) => dataset,
            Err(reason) => {
                if let Some(reason) = reason {
                    eprintln!("dataset cache {}: {reason}; rebuilding it", cache_path.display());
                }
                let dataset = decode_folder(folder, &files, image_size)?;
                if let Err(error) = write_cache(cache_path, &dataset, &fingerprint) {
                    eprintln!("could not write dataset cache {}: {error}", cache_path.display());
                }
                dataset
            }
        };
        if dataset.len_train() < min_images {
            let report = &dataset.report;
            bail!(
                "{} has {} usable images ({} for training, {} held out, {} skipped), but training \
                 needs at least {min_images} training images (one batch)",
                folder.display(),
                report.loaded,
                dataset.len_train(),
                dataset.len_heldout(),
                report.skipped
            );
        }
        Ok(dataset)
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
        let heldout = heldout_indices(&names);
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

/// Image indices (into `names`, ascending) held out for evaluation: those whose name hashes into
/// the lowest 2%; with 2 or more images at least one is held out and at least one is kept.
fn heldout_indices(names: &[String]) -> Vec<usize> {
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

/// Appends the image files under `folder` (recursively, not following links to folders).
fn collect_image_files(
    folder: &Path,
    prefix: &str,
    files: &mut Vec<ImageFile>,
) -> anyhow::Result<()> {
    let entries =
        fs::read_dir(folder).with_context(|| format!("reading folder {}", folder.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading folder {}", folder.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            collect_image_files(&path, &relative, files)?;
            continue;
        }
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        if !extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            continue;
        }
        // A file whose metadata cannot be read is still listed: decoding it fails and counts it.
        let metadata = fs::metadata(&path).ok();
        let len = metadata.as_ref().map_or(0, |m| m.len());
        let modified_ns = metadata
            .and_then(|m| m.modified().ok())
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |age| age.as_nanos());
        files.push(ImageFile { path, relative, len, modified_ns });
    }
    Ok(())
}

/// SHA-256 over the sorted relative paths, sizes and modification times, hex.
fn folder_fingerprint(files: &[ImageFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.relative.as_bytes());
        hasher.update([0]);
        hasher.update(file.len.to_le_bytes());
        hasher.update(file.modified_ns.to_le_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes `files` in parallel into a dataset; skipped files are counted in its report.
fn decode_folder(folder: &Path, files: &[ImageFile], size: usize) -> anyhow::Result<ImageDataset> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
    let next = AtomicUsize::new(0);
    let mut decoded: Vec<Option<Result<Vec<u8>, String>>> =
        (0..files.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(index) else { break done };
                        done.push((index, decode_file(&file.path, size)));
                    }
                })
            })
            .collect();
        for worker in workers {
            // Decoding catches panics, so a worker only fails on an abort-like error; the
            // files it had not returned stay `None` and are counted as skipped below.
            for (index, result) in worker.join().unwrap_or_default() {
                decoded[index] = Some(result);
            }
        }
    });

    let mut pixels = Vec::with_capacity(files.len() * 3 * size * size);
    let mut names = Vec::new();
    let mut report = LoadReport { loaded: 0, skipped: 0, first_skipped: vec![], from_cache: false };
    for (file, result) in files.iter().zip(decoded) {
        match result.unwrap_or_else(|| Err("decoder thread failed".into())) {
            Ok(bytes) => {
                pixels.extend_from_slice(&bytes);
                names.push(file.relative.clone());
                report.loaded += 1;
            }
            Err(reason) => {
                report.skipped += 1;
                if report.first_skipped.len() < MAX_SKIPPED_NAMES {
                    report.first_skipped.push(format!("{} ({reason})", file.relative));
                }
            }
        }
    }
    if report.loaded == 0 {
        bail!(
            "none of the {} image files in {} could be decoded; first failures: {}",
            report.skipped,
            folder.display(),
            report.first_skipped.join(", ")
        );
    }
    let heldout = heldout_indices(&names);
    Ok(ImageDataset::new(size, pixels, heldout, report))
}

/// Reads and decodes one file into `3 x size x size` planar bytes, or says why it cannot.
fn decode_file(path: &Path, size: usize) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|error| error.to_string())?;
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    // Decoders should return errors on bad data; a panic on a hostile file must not end the
    // load, so it is caught and the file skipped like any other undecodable one.
    let decoded = std::panic::catch_unwind(|| -> image::ImageResult<DynamicImage> {
        image::ImageReader::new(Cursor::new(&bytes)).with_guessed_format()?.decode()
    });
    match decoded {
        Ok(Ok(image)) if image.width() > 0 && image.height() > 0 => {
            Ok(square_planar(&image, size as u32))
        }
        Ok(Ok(_)) => Err("image has no pixels".into()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("decoder panicked".into()),
    }
}

/// Centre-crops to a square, composites alpha over white, resizes to `size` (Lanczos3, skipped
/// when already that size) and lays the result out planar CHW.
fn square_planar(image: &DynamicImage, size: u32) -> Vec<u8> {
    let side = image.width().min(image.height());
    let square =
        image.crop_imm((image.width() - side) / 2, (image.height() - side) / 2, side, side);
    let mut rgb = image::RgbImage::new(side, side);
    for (out, pixel) in rgb.pixels_mut().zip(square.to_rgba8().pixels()) {
        let alpha = u32::from(pixel[3]);
        for channel in 0..3 {
            // Rounded `c * a + 255 * (1 - a)` in 8-bit fixed point.
            let blended = (u32::from(pixel[channel]) * alpha + 255 * (255 - alpha) + 127) / 255;
            out[channel] = blended as u8;
        }
    }
    if side != size {
        rgb = imageops::resize(&rgb, size, size, FilterType::Lanczos3);
    }
    let plane = (size * size) as usize;
    let mut planar = vec![0; 3 * plane];
    for (index, pixel) in rgb.pixels().enumerate() {
        for channel in 0..3 {
            planar[channel * plane + index] = pixel[channel];
        }
    }
    planar
}

/// Loads the cache if it holds `image_size` images of the folder with `fingerprint`.
/// `Err(None)`: there is no cache; `Err(Some(reason))`: it exists but cannot be used.
fn read_cache(
    path: &Path,
    image_size: usize,
    fingerprint: &str,
) -> Result<ImageDataset, Option<String>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(error) => return Err(Some(error.to_string())),
    };
    let io_error = |error: io::Error| Some(format!("unreadable or truncated ({error})"));
    let mut prefix = [0; 16];
    file.read_exact(&mut prefix).map_err(io_error)?;
    if prefix[..8] != CACHE_MAGIC {
        return Err(Some("not a dataset cache (bad magic)".into()));
    }
    let version = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    if version != CACHE_VERSION {
        return Err(Some(format!("cache version {version}, expected {CACHE_VERSION}")));
    }
    let header_len = u32::from_le_bytes([prefix[12], prefix[13], prefix[14], prefix[15]]);
    if header_len > MAX_HEADER_BYTES {
        return Err(Some(format!("header of {header_len} bytes is corrupt")));
    }
    let mut header_bytes = vec![0; header_len as usize];
    file.read_exact(&mut header_bytes).map_err(io_error)?;
    let header: CacheHeader = serde_json::from_slice(&header_bytes)
        .map_err(|error| Some(format!("corrupt header ({error})")))?;
    if header.image_size != image_size {
        return Err(Some(format!("holds {0}x{0} images, not {image_size}", header.image_size)));
    }
    if header.fingerprint != fingerprint {
        return Err(Some("the image folder changed since it was written".into()));
    }
    let pixel_len = header
        .count
        .checked_mul(3 * image_size * image_size)
        .filter(|&len| len > 0)
        .ok_or_else(|| Some(format!("corrupt image count {}", header.count)))?;
    let expected_file_len = 16 + u64::from(header_len) + pixel_len as u64;
    let file_len = file.metadata().map_err(io_error)?.len();
    if file_len != expected_file_len {
        return Err(Some(format!("{file_len} bytes, expected {expected_file_len} (truncated?)")));
    }
    let heldout_valid = header.heldout.windows(2).all(|pair| pair[0] < pair[1])
        && header.heldout.last().is_none_or(|&last| last < header.count)
        && header.heldout.len() < header.count;
    if !heldout_valid {
        return Err(Some("corrupt held-out list".into()));
    }
    let mut pixels = vec![0; pixel_len];
    file.read_exact(&mut pixels).map_err(io_error)?;
    let report = LoadReport {
        loaded: header.count,
        skipped: header.skipped,
        first_skipped: header.first_skipped,
        from_cache: true,
    };
    Ok(ImageDataset::new(image_size, pixels, header.heldout, report))
}

/// Writes the cache: magic, version (u32 LE), header length (u32 LE), JSON [`CacheHeader`], then
/// the images' bytes as held in memory. It goes to a temporary name next to `path` first and is
/// renamed into place, so a reader never sees a half-written file.
fn write_cache(path: &Path, dataset: &ImageDataset, fingerprint: &str) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let header = CacheHeader {
        image_size: dataset.image_size,
        count: dataset.report.loaded,
        fingerprint: fingerprint.to_owned(),
        heldout: dataset.heldout.clone(),
        skipped: dataset.report.skipped,
        first_skipped: dataset.report.first_skipped.clone(),
    };
    let header_bytes = serde_json::to_vec(&header).map_err(io::Error::other)?;
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp_path = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = BufWriter::new(File::create(&temp_path)?);
        file.write_all(&CACHE_MAGIC)?;
        file.write_all(&CACHE_VERSION.to_le_bytes())?;
        file.write_all(&(header_bytes.len() as u32).to_le_bytes())?;
        file.write_all(&header_bytes)?;
        file.write_all(&dataset.pixels)?;
        file.into_inner().map_err(|error| error.into_error())?.sync_all()
    })();
    match written.and_then(|()| fs::rename(&temp_path, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = fs::remove_file(&temp_path);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};
    use std::collections::BTreeSet;
    use std::ops::Range;

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let unique = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("ddpm-data-test-{name}-{}-{unique}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(path.join("images")).unwrap();
            TempDir(path)
        }

        fn images(&self) -> PathBuf {
            self.0.join("images")
        }

        fn cache(&self) -> PathBuf {
            self.0.join("runs/test/dataset-8.cache")
        }

        fn load(&self, min_images: usize) -> anyhow::Result<ImageDataset> {
            ImageDataset::load(&self.images(), 8, &self.cache(), min_images)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn save(image: &RgbImage, path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save(path).unwrap();
    }

    /// 8x8 image number `n`: red and green spell `n`, blue rises left to right (so a flip shows).
    fn numbered(n: u32) -> RgbImage {
        RgbImage::from_fn(8, 8, |x, _| Rgb([(n % 256) as u8, (n / 256) as u8, (x * 30) as u8]))
    }

    fn write_numbered(folder: &Path, numbers: Range<u32>) {
        for n in numbers {
            save(&numbered(n), &folder.join(format!("img-{n:04}.png")));
        }
    }

    fn value_to_byte(value: f32) -> u8 {
        ((value + 1.0) * 127.5).round() as u8
    }

    /// The number of each 8x8 numbered image in planar values.
    fn numbers_of(values: &[f32]) -> Vec<u32> {
        values
            .chunks_exact(3 * 64)
            .map(|image| {
                u32::from(value_to_byte(image[0])) + 256 * u32::from(value_to_byte(image[64]))
            })
            .collect()
    }

    /// `count` distinct, left-right asymmetric 4x4 images.
    fn packed(count: usize) -> ImageDataset {
        let pixels = (0..count * 48).map(|i| ((i / 48) * 7 + (i % 48) * 5) as u8).collect();
        ImageDataset::from_packed(4, pixels).unwrap()
    }

    #[test]
    fn corrupt_image_is_skipped_counted_and_named() {
        let dir = TempDir::new("corrupt");
        write_numbered(&dir.images(), 0..3);
        fs::write(dir.images().join("garbage.png"), b"this is not a png").unwrap();
        let png = fs::read(dir.images().join("img-0000.png")).unwrap();
        fs::write(dir.images().join("truncated.png"), &png[..png.len() / 2]).unwrap();
        let dataset = dir.load(1).unwrap();
        let report = dataset.report();
        assert_eq!((report.loaded, report.skipped), (3, 2));
        assert!(report.first_skipped[0].starts_with("garbage.png ("), "{report:?}");
        assert!(report.first_skipped[1].starts_with("truncated.png ("), "{report:?}");
    }

    #[test]
    fn zero_byte_image_is_skipped_and_counted() {
        let dir = TempDir::new("zero");
        write_numbered(&dir.images(), 0..3);
        fs::write(dir.images().join("empty.jpg"), b"").unwrap();
        let report = dir.load(1).unwrap().report().clone();
        assert_eq!((report.loaded, report.skipped), (3, 1));
        assert_eq!(report.first_skipped, ["empty.jpg (empty file)"]);
    }

    #[test]
    fn non_image_files_are_ignored_not_counted() {
        let dir = TempDir::new("non-image");
        write_numbered(&dir.images(), 0..3);
        fs::write(dir.images().join("README.txt"), b"avatars").unwrap();
        fs::write(dir.images().join(".DS_Store"), b"\0\0").unwrap();
        fs::write(dir.images().join("labels.json"), b"{}").unwrap();
        let report = dir.load(1).unwrap().report().clone();
        assert_eq!((report.loaded, report.skipped), (3, 0));
    }

    #[test]
    fn only_undecodable_images_is_an_error_naming_them() {
        let dir = TempDir::new("all-bad");
        fs::write(dir.images().join("a.png"), b"junk").unwrap();
        fs::write(dir.images().join("b.webp"), b"").unwrap();
        let error = format!("{:#}", dir.load(1).err().unwrap());
        assert!(error.contains("none of the 2 image files"), "{error}");
        assert!(error.contains("a.png") && error.contains(&dir.images().display().to_string()));
    }

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
    fn loads_png_jpeg_and_webp_recursively() {
        let dir = TempDir::new("formats");
        save(&numbered(1), &dir.images().join("a.png"));
        save(&numbered(2), &dir.images().join("sub/b.JPG"));
        save(&numbered(3), &dir.images().join("sub/deeper/c.webp"));
        let dataset = dir.load(1).unwrap();
        assert_eq!((dataset.report().loaded, dataset.report().skipped), (3, 0));
        assert_eq!(dataset.image_size(), 8);
    }

    #[test]
    fn cache_is_reused_while_the_folder_is_unchanged() {
        let dir = TempDir::new("cache-reuse");
        write_numbered(&dir.images(), 0..20);
        fs::write(dir.images().join("bad.png"), b"junk").unwrap();
        let built = dir.load(1).unwrap();
        assert!(!built.report().from_cache);
        let cached = dir.load(1).unwrap();
        assert!(cached.report().from_cache);
        assert_eq!((cached.report().loaded, cached.report().skipped), (20, 1));
        assert_eq!(cached.report().first_skipped, built.report().first_skipped);
        assert_eq!(cached.pixels, built.pixels);
        assert_eq!(cached.heldout, built.heldout);
        assert_eq!(cached.batch(1, 2, 8), built.batch(1, 2, 8));
    }

    #[test]
    fn cache_is_rebuilt_when_a_file_is_added() {
        let dir = TempDir::new("cache-added");
        write_numbered(&dir.images(), 0..10);
        dir.load(1).unwrap();
        write_numbered(&dir.images().join("more"), 10..11);
        let rebuilt = dir.load(1).unwrap();
        assert!(!rebuilt.report().from_cache);
        assert_eq!(rebuilt.report().loaded, 11);
        assert!(dir.load(1).unwrap().report().from_cache);
    }

    #[test]
    fn cache_is_rebuilt_for_another_image_size() {
        let dir = TempDir::new("cache-size");
        write_numbered(&dir.images(), 0..4);
        dir.load(1).unwrap();
        let resized = ImageDataset::load(&dir.images(), 4, &dir.cache(), 1).unwrap();
        assert!(!resized.report().from_cache);
        assert_eq!(resized.image_size(), 4);
    }

    /// Damages the cache with `damage`, then checks the next load rebuilds and rewrites it.
    fn assert_rebuilt_after(name: &str, damage: impl Fn(&Path)) {
        let dir = TempDir::new(name);
        write_numbered(&dir.images(), 0..10);
        let built = dir.load(1).unwrap();
        damage(&dir.cache());
        let rebuilt = dir.load(1).unwrap();
        assert!(!rebuilt.report().from_cache);
        assert_eq!(rebuilt.pixels, built.pixels);
        assert!(dir.load(1).unwrap().report().from_cache, "the rebuilt cache is written back");
    }

    #[test]
    fn corrupted_cache_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-magic", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[0] ^= 0xff;
            fs::write(path, bytes).unwrap();
        });
        assert_rebuilt_after("cache-header", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[16..40].fill(b'#');
            fs::write(path, bytes).unwrap();
        });
        assert_rebuilt_after("cache-garbage", |path| fs::write(path, b"garbage").unwrap());
    }

    #[test]
    fn truncated_cache_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-truncated", |path| {
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(file.metadata().unwrap().len() - 1).unwrap();
        });
        assert_rebuilt_after("cache-empty", |path| fs::write(path, b"").unwrap());
    }

    #[test]
    fn cache_of_another_version_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-version", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[8..12].copy_from_slice(&(CACHE_VERSION + 1).to_le_bytes());
            fs::write(path, bytes).unwrap();
        });
    }

    #[test]
    fn non_square_image_is_centre_cropped_and_resized() {
        let dir = TempDir::new("crop");
        // Red and blue bands outside the centre square, green inside it, both orientations.
        let band = |along: u32| {
            if along < 25 {
                [255, 0, 0]
            } else if along < 75 {
                [0, 255, 0]
            } else {
                [0, 0, 255]
            }
        };
        save(&RgbImage::from_fn(100, 50, |x, _| Rgb(band(x))), &dir.images().join("wide.png"));
        save(&RgbImage::from_fn(50, 100, |_, y| Rgb(band(y))), &dir.images().join("tall.png"));
        let dataset = dir.load(1).unwrap();
        assert_eq!(dataset.pixels.len(), 2 * 3 * 8 * 8);
        for image in dataset.pixels.chunks_exact(3 * 64) {
            let (red, green, blue) = (&image[..64], &image[64..128], &image[128..]);
            assert!(red.iter().chain(blue).all(|&byte| byte <= 1), "{image:?}");
            assert!(green.iter().all(|&byte| byte >= 254), "{image:?}");
        }
    }

    #[test]
    fn alpha_is_composited_over_white() {
        let dir = TempDir::new("alpha");
        let image = RgbaImage::from_fn(8, 8, |x, _| {
            if x < 4 { Rgba([0, 0, 0, 0]) } else { Rgba([200, 0, 0, 255]) }
        });
        image.save(dir.images().join("transparent.png")).unwrap();
        let dataset = dir.load(1).unwrap();
        let red_plane = &dataset.pixels[..64];
        let green_plane = &dataset.pixels[64..128];
        assert!(red_plane.chunks(8).all(|row| row[..4] == [255; 4] && row[4..] == [200; 4]));
        assert!(green_plane.chunks(8).all(|row| row[..4] == [255; 4] && row[4..] == [0; 4]));
    }

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
    fn from_packed_rejects_a_partial_image() {
        assert!(ImageDataset::from_packed(4, vec![0; 47]).is_err());
        assert!(ImageDataset::from_packed(4, vec![]).is_err());
        assert!(ImageDataset::from_packed(0, vec![0; 3]).is_err());
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

//! Decoding: each image file into `3 x size x size` planar bytes, in parallel, skipping (and
//! counting) the files that cannot be decoded.

use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::bail;
use image::DynamicImage;
use image::imageops::{self, FilterType};

use super::scan::ImageFile;
use super::split::heldout_indices;
use super::{ImageDataset, LoadReport};

/// How many skipped file names the report keeps.
const MAX_SKIPPED_NAMES: usize = 5;

/// Decodes `files` in parallel into a dataset; skipped files are counted in its report.
pub(super) fn decode_folder(
    folder: &Path,
    files: &[ImageFile],
    size: usize,
) -> anyhow::Result<ImageDataset> {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    use crate::data::test_support::{TempDir, save, write_numbered};

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
    fn only_undecodable_images_is_an_error_naming_them() {
        let dir = TempDir::new("all-bad");
        fs::write(dir.images().join("a.png"), b"junk").unwrap();
        fs::write(dir.images().join("b.webp"), b"").unwrap();
        let error = format!("{:#}", dir.load(1).err().unwrap());
        assert!(error.contains("none of the 2 image files"), "{error}");
        assert!(error.contains("a.png") && error.contains(&dir.images().display().to_string()));
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
}

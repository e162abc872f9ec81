//! Pixels: model values in `[-1, 1]` (planar `[batch, 3, height, width]`) to and from RGBA
//! bytes, a grid of a batch, and PNG encoding with the `image` crate.
//!
//! These functions work on host memory; reading a tensor back from the device is the caller's
//! business (sync natively, async in the browser).

use image::{ImageEncoder, codecs::png::PngEncoder};
use thiserror::Error;

/// Errors from pixel conversions.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The number of values does not match the stated shape.
    #[error("expected {expected} values for {what}, got {actual}")]
    WrongLength {
        /// What was being converted.
        what: &'static str,
        /// Values the shape implies.
        expected: usize,
        /// Values received.
        actual: usize,
    },
    /// PNG encoding or decoding failed.
    #[error("PNG: {0}")]
    Png(#[from] image::ImageError),
}

/// The shape of a batch of RGB images, `[batch, 3, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// Number of images.
    pub batch: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl BatchShape {
    /// Values in one image, `3 * height * width`.
    pub fn per_image(&self) -> usize {
        3 * self.height * self.width
    }
}

/// An RGBA picture, 4 bytes a pixel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl Rgba {
    /// Checks that the pixel buffer holds exactly `width * height` RGBA pixels.
    pub fn check(&self) -> Result<(), ImageError> {
        let expected = self.width * self.height * 4;
        if self.pixels.len() != expected {
            return Err(ImageError::WrongLength {
                what: "RGBA pixels",
                expected,
                actual: self.pixels.len(),
            });
        }
        Ok(())
    }
}

/// Maps a model value in `[-1, 1]` to a byte, clamping values outside.
pub fn value_to_byte(value: f32) -> u8 {
    ((value + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Maps a byte to a model value in `[-1, 1]`.
pub fn byte_to_value(byte: u8) -> f32 {
    f32::from(byte) / 127.5 - 1.0
}

/// Lays a planar batch out as a grid of `columns` images with `gap` background pixels between
/// them (opaque black), one RGBA picture.
pub fn batch_to_grid(
    values: &[f32],
    shape: BatchShape,
    columns: usize,
    gap: usize,
) -> Result<Rgba, ImageError> {
    let expected = shape.batch * shape.per_image();
    if values.len() != expected {
        return Err(ImageError::WrongLength { what: "the batch", expected, actual: values.len() });
    }
    let columns = columns.clamp(1, shape.batch.max(1));
    let rows = shape.batch.div_ceil(columns);
    let width = columns * shape.width + columns.saturating_sub(1) * gap;
    let height = rows * shape.height + rows.saturating_sub(1) * gap;
    let mut pixels = vec![0u8; width * height * 4];
    for alpha in pixels.iter_mut().skip(3).step_by(4) {
        *alpha = 255;
    }
    let plane = shape.height * shape.width;
    for (index, image) in values.chunks_exact(shape.per_image()).enumerate() {
        let left = (index % columns) * (shape.width + gap);
        let top = (index / columns) * (shape.height + gap);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let source = y * shape.width + x;
                let target = ((top + y) * width + left + x) * 4;
                for channel in 0..3 {
                    pixels[target + channel] = value_to_byte(image[channel * plane + source]);
                }
            }
        }
    }
    Ok(Rgba { width, height, pixels })
}

/// Columns of the most square grid for `batch` images (1, 4, 9, 16 give square grids).
pub fn square_columns(batch: usize) -> usize {
    (1..=batch.max(1)).find(|c| c * c >= batch).unwrap_or(1)
}

/// Converts one RGBA picture to planar `[3, height, width]` values in `[-1, 1]` (alpha dropped).
pub fn rgba_to_values(rgba: &Rgba) -> Result<Vec<f32>, ImageError> {
    rgba.check()?;
    let plane = rgba.width * rgba.height;
    let mut values = vec![0.0; 3 * plane];
    for (index, pixel) in rgba.pixels.chunks_exact(4).enumerate() {
        for channel in 0..3 {
            values[channel * plane + index] = byte_to_value(pixel[channel]);
        }
    }
    Ok(values)
}

/// Scales a picture up by an integer factor with nearest-neighbour sampling (crisp pixels).
pub fn upscale_nearest(rgba: &Rgba, factor: usize) -> Rgba {
    let factor = factor.max(1);
    let (width, height) = (rgba.width * factor, rgba.height * factor);
    let mut pixels = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            let source = ((y / factor) * rgba.width + x / factor) * 4;
            pixels.extend_from_slice(&rgba.pixels[source..source + 4]);
        }
    }
    Rgba { width, height, pixels }
}

/// Encodes a picture as PNG bytes.
pub fn encode_png(rgba: &Rgba) -> Result<Vec<u8>, ImageError> {
    rgba.check()?;
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes).write_image(
        &rgba.pixels,
        rgba.width as u32,
        rgba.height as u32,
        image::ExtendedColorType::Rgba8,
    )?;
    Ok(bytes)
}

/// Decodes PNG (or any format the `image` crate was built with) into RGBA.
pub fn decode_image(bytes: &[u8]) -> Result<Rgba, ImageError> {
    let decoded = image::load_from_memory(bytes)?.to_rgba8();
    Ok(Rgba {
        width: decoded.width() as usize,
        height: decoded.height() as usize,
        pixels: decoded.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_value_round_trip_is_exact_for_every_byte() {
        for byte in 0..=255u8 {
            assert_eq!(value_to_byte(byte_to_value(byte)), byte);
        }
        assert_eq!(value_to_byte(-3.0), 0);
        assert_eq!(value_to_byte(7.0), 255);
    }

    #[test]
    fn grid_places_each_image_in_its_cell() {
        let shape = BatchShape { batch: 3, height: 2, width: 2 };
        // Image i is a flat colour with red = i-th value.
        let reds = [-1.0, 0.0, 1.0];
        let values: Vec<f32> = reds
            .iter()
            .flat_map(|&red| [vec![red; 4], vec![-1.0; 4], vec![-1.0; 4]].concat())
            .collect();
        let grid = batch_to_grid(&values, shape, 2, 1).unwrap();
        assert_eq!((grid.width, grid.height), (5, 5));
        let red_at = |x: usize, y: usize| grid.pixels[(y * grid.width + x) * 4];
        assert_eq!(red_at(0, 0), 0);
        assert_eq!(red_at(3, 1), 128);
        assert_eq!(red_at(1, 4), 255);
        assert_eq!(red_at(2, 0), 0, "gap column stays background");
    }

    #[test]
    fn png_round_trip_keeps_pixels() {
        let rgba = Rgba { width: 3, height: 2, pixels: (0..24).map(|v| v as u8 * 10).collect() };
        let decoded = decode_image(&encode_png(&rgba).unwrap()).unwrap();
        assert_eq!(decoded, rgba);
        let values = rgba_to_values(&rgba).unwrap();
        assert_eq!(values.len(), 18);
        assert_eq!(value_to_byte(values[6]), rgba.pixels[1]);
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let shape = BatchShape { batch: 2, height: 2, width: 2 };
        assert!(batch_to_grid(&[0.0; 5], shape, 2, 0).is_err());
        assert!(encode_png(&Rgba { width: 2, height: 2, pixels: vec![0; 3] }).is_err());
        assert!(decode_image(b"not an image").is_err());
    }

    #[test]
    fn square_columns_for_page_batches() {
        assert_eq!([1, 4, 9, 16, 5].map(square_columns), [1, 2, 3, 4, 3]);
    }
}

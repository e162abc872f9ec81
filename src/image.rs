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
    let plane = shape.height * shape.width;
    Ok(layout_grid(shape, columns, gap, |index, pixel| {
        let image = &values[index * shape.per_image()..];
        [0, 1, 2].map(|channel| value_to_byte(image[channel * plane + pixel]))
    }))
}

/// Packs one RGB pixel of bytes into a float, `r + 256 g + 65536 b`: every value is a whole
/// number below 2^24, so an `f32` holds it exactly (what [`crate::readback`] computes on the
/// device to read 4 bytes a pixel back instead of 12).
pub fn pack_rgb([red, green, blue]: [u8; 3]) -> f32 {
    (u32::from(red) | u32::from(green) << 8 | u32::from(blue) << 16) as f32
}

/// The inverse of [`pack_rgb`]; values outside `0 ..= 2^24 - 1` are clamped into it.
pub fn unpack_rgb(packed: f32) -> [u8; 3] {
    let bits = packed.clamp(0.0, 16_777_215.0) as u32;
    [bits as u8, (bits >> 8) as u8, (bits >> 16) as u8]
}

/// [`batch_to_grid`] for pixels packed by [`pack_rgb`], `[batch, height, width]`.
pub fn packed_to_grid(
    packed: &[f32],
    shape: BatchShape,
    columns: usize,
    gap: usize,
) -> Result<Rgba, ImageError> {
    let plane = shape.height * shape.width;
    let expected = shape.batch * plane;
    if packed.len() != expected {
        return Err(ImageError::WrongLength {
            what: "the packed batch",
            expected,
            actual: packed.len(),
        });
    }
    Ok(layout_grid(shape, columns, gap, |index, pixel| unpack_rgb(packed[index * plane + pixel])))
}

/// The grid both layouts share: `rgb(image, pixel)` gives image `image`'s pixel at row-major
/// position `pixel`.
fn layout_grid(
    shape: BatchShape,
    columns: usize,
    gap: usize,
    rgb: impl Fn(usize, usize) -> [u8; 3],
) -> Rgba {
    let columns = columns.clamp(1, shape.batch.max(1));
    let rows = shape.batch.div_ceil(columns);
    let width = columns * shape.width + columns.saturating_sub(1) * gap;
    let height = rows * shape.height + rows.saturating_sub(1) * gap;
    let mut pixels = vec![0u8; width * height * 4];
    for alpha in pixels.iter_mut().skip(3).step_by(4) {
        *alpha = 255;
    }
    for index in 0..shape.batch {
        let left = (index % columns) * (shape.width + gap);
        let top = (index / columns) * (shape.height + gap);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let target = ((top + y) * width + left + x) * 4;
                pixels[target..target + 3].copy_from_slice(&rgb(index, y * shape.width + x));
            }
        }
    }
    Rgba { width, height, pixels }
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
    fn packed_pixels_round_trip_and_lay_out_like_planar_values() {
        for bytes in [[0, 0, 0], [255, 255, 255], [1, 128, 254], [17, 0, 200]] {
            assert_eq!(unpack_rgb(pack_rgb(bytes)), bytes);
        }
        assert_eq!(pack_rgb([1, 2, 3]), 1.0 + 512.0 + 196_608.0);
        assert_eq!(unpack_rgb(-5.0), [0, 0, 0]);
        assert_eq!(unpack_rgb(1e9), [255, 255, 255]);
        let shape = BatchShape { batch: 3, height: 2, width: 3 };
        let values: Vec<f32> = (0..54).map(|i| (i as f32 * 0.37).sin() * 1.2).collect();
        let packed: Vec<f32> = (0..3)
            .flat_map(|image| {
                let values = &values[image * 18..];
                (0..6).map(move |p| pack_rgb([0, 6, 12].map(|c| value_to_byte(values[c + p]))))
            })
            .collect();
        assert_eq!(
            packed_to_grid(&packed, shape, 2, 1).unwrap(),
            batch_to_grid(&values, shape, 2, 1).unwrap()
        );
        assert!(packed_to_grid(&packed[1..], shape, 2, 1).is_err());
    }

    #[test]
    fn square_columns_for_page_batches() {
        assert_eq!([1, 4, 9, 16, 5].map(square_columns), [1, 2, 3, 4, 3]);
    }
}

//! Helpers shared by the trainer's integration tests.

use burn::store::{ModuleSnapshot, bridge};
use ddpm_avatars::UNet;

/// `count` images of `size`x`size` (packed RGB planes): a coloured disc of varying position, size and colour on a flat
/// background, so there is structure to learn.
pub fn generated_images(count: usize, size: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(count * 3 * size * size);
    for i in 0..count {
        let (cx, cy) = ((3 + i * 5 % 10) as f32, (3 + i * 7 % 10) as f32);
        let radius = 3.0 + (i % 4) as f32;
        let disc = [(i * 40 % 256) as u8, (255 - i * 20 % 256) as u8, (i * 90 % 256) as u8];
        let background = [230u8, 220, (i * 13 % 100) as u8 + 120];
        for channel in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let inside =
                        (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < radius * radius;
                    pixels.push(if inside { disc[channel] } else { background[channel] });
                }
            }
        }
    }
    pixels
}

/// Every parameter value of `model`, in module order.
pub fn all_values(model: &UNet) -> Vec<f32> {
    model
        .collect(None, None, false)
        .iter()
        .flat_map(|t| bridge::to_data(t).unwrap().try_into_vec_as::<f32>().unwrap())
        .collect()
}

/// Largest absolute difference between two parameter lists.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

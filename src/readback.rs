//! What the page reads from the device after a step, in one transfer.
//!
//! Reading a tensor back waits for the device (on WebGPU: a buffer copy and a map), so a step
//! that wants the grid, the predicted `x_0` and five images of one avatar should not wait seven
//! times. [`Readback`] joins every tensor a step wants into one flat tensor, read once, and
//! splits the values again. Images wanted only as pictures are quantised to bytes on the
//! device first and packed three bytes to a float ([`pack_pixels`]): 4 bytes a pixel come back
//! instead of 12.

use burn::tensor::{Tensor, s};
use thiserror::Error;

/// A read-back that did not return what was asked for.
#[derive(Debug, Error)]
#[error("the device returned {actual} values, {expected} were asked for")]
pub struct ReadbackError {
    /// Values the joined tensor holds.
    pub expected: usize,
    /// Values that came back.
    pub actual: usize,
}

/// Planar images `[batch, 3, height, width]` in `[-1, 1]` as pixels, on the device: each
/// value becomes its byte ([`crate::image::value_to_byte`]) and each pixel the float
/// `r + 256 g + 65536 b` ([`crate::image::pack_rgb`]), `[batch, height, width]`.
pub fn pack_pixels(images: Tensor<4>) -> Tensor<3> {
    let [batch, channels, height, width] = images.dims();
    debug_assert_eq!(channels, 3, "pixels are RGB");
    // value_to_byte: round((v + 1) * 127.5) within 0 ..= 255. floor(y + 0.5) is Rust's
    // round for y >= 0 (burn's round() rounds halves to even).
    let bytes = images.add_scalar(1.0).mul_scalar(127.5).clamp(0.0, 255.0).add_scalar(0.5).floor();
    let channel = |c: usize| bytes.clone().slice(s![.., c..c + 1]).reshape([batch, height, width]);
    channel(0) + channel(1).mul_scalar(256.0) + channel(2).mul_scalar(65_536.0)
}

/// Tensors joined to be read back in one transfer.
#[derive(Default)]
pub struct Readback {
    parts: Vec<Tensor<1>>,
    lengths: Vec<usize>,
}

impl Readback {
    /// Adds `tensor` (any shape, flattened) and returns its index among the split parts.
    pub fn push<const D: usize>(&mut self, tensor: Tensor<D>) -> usize {
        let length = tensor.shape().num_elements();
        self.parts.push(tensor.reshape([length]));
        self.lengths.push(length);
        self.parts.len() - 1
    }

    /// The one tensor to read (`None` when nothing was pushed) and how to split its values.
    pub fn join(self) -> Option<(Tensor<1>, Split)> {
        if self.parts.is_empty() {
            return None;
        }
        Some((Tensor::cat(self.parts, 0), Split { lengths: self.lengths }))
    }
}

/// How to cut the values of a joined read-back into the tensors pushed.
#[derive(Debug)]
pub struct Split {
    lengths: Vec<usize>,
}

impl Split {
    /// The values of each pushed tensor, in push order.
    pub fn split(&self, values: Vec<f32>) -> Result<Vec<Vec<f32>>, ReadbackError> {
        let expected = self.lengths.iter().sum();
        if values.len() != expected {
            return Err(ReadbackError { expected, actual: values.len() });
        }
        let mut rest = values.as_slice();
        Ok(self
            .lengths
            .iter()
            .map(|&length| {
                let (part, tail) = rest.split_at(length);
                rest = tail;
                part.to_vec()
            })
            .collect())
    }
}

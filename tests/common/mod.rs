//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, Tensor};
use ddpm_avatars::model::perturbed;
use ddpm_avatars::{UNet, UNetConfig};

/// The tiny U-Net with every weight perturbed: a model whose outputs depend on everything.
pub fn perturbed_tiny_unet(seed: u64, device: &Device) -> UNet {
    perturbed(UNetConfig::tiny().init(device), seed, 0.05)
}

/// Every parameter of `model` as (name, shape, values), sorted by name.
pub fn parameters(model: &UNet) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut all: Vec<_> = model
        .collect(None, None, false)
        .into_iter()
        .map(|tensor| {
            let values = bridge::to_data(&tensor).unwrap().try_into_vec_as::<f32>().unwrap();
            (tensor.name.clone(), tensor.shape.to_vec(), values)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Host copy of a tensor's values.
pub fn values<const D: usize>(tensor: &Tensor<D>) -> Vec<f32> {
    tensor.clone().try_into_vec_as::<f32>().unwrap()
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

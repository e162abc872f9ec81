//! The page's one read-back per step: pixels quantised and packed on the device give the same
//! picture as planar values converted on the host, and a joined read splits back exactly.

use burn::tensor::{Device, Tensor, TensorData};
use ddpm_avatars::image::{BatchShape, batch_to_grid, byte_to_value, packed_to_grid};
use ddpm_avatars::noise::{NoiseStream, standard_normal};
use ddpm_avatars::readback::{Readback, pack_pixels};

mod common;
use common::values;

#[test]
fn pixels_packed_on_the_device_equal_the_host_conversion() {
    let device = Device::flex();
    let shape = BatchShape { batch: 4, height: 8, width: 8 };
    // Noise spread past [-1, 1] (clamped), plus every byte's exact value (no rounding slack).
    let mut planar: Vec<f32> =
        standard_normal(3, NoiseStream::Initial, 4 * 3 * 64).into_iter().map(|v| v * 0.8).collect();
    for (slot, byte) in planar.iter_mut().zip(0..=255u8) {
        *slot = byte_to_value(byte);
    }
    let images = Tensor::<4>::from_data(TensorData::new(planar.clone(), [4, 3, 8, 8]), &device);
    let packed = values(&pack_pixels(images));
    assert_eq!(packed.len(), 4 * 64, "one float a pixel");
    let on_device = packed_to_grid(&packed, shape, 2, 2).unwrap();
    let on_host = batch_to_grid(&planar, shape, 2, 2).unwrap();
    assert_eq!(on_device, on_host);
}

#[test]
fn one_joined_read_splits_into_the_tensors_pushed() {
    let device = Device::flex();
    let a = Tensor::<4>::from_data(
        TensorData::new((0..24).map(|v| v as f32).collect(), [2, 3, 2, 2]),
        &device,
    );
    let b = Tensor::<3>::from_data(TensorData::new(vec![-1.5f32, 2.5, 7.0], [1, 1, 3]), &device);
    let mut readback = Readback::default();
    assert_eq!(readback.push(a.clone()), 0);
    assert_eq!(readback.push(b.clone()), 1);
    assert_eq!(readback.push(a.clone().slice(1..2)), 2);
    let (joined, split) = readback.join().unwrap();
    let parts = split.split(values(&joined)).unwrap();
    assert_eq!(parts, vec![values(&a), values(&b), values(&a.slice(1..2))]);
    let error = split.split(vec![0.0; 5]).unwrap_err();
    assert_eq!((error.expected, error.actual), (39, 5));
    assert!(Readback::default().join().is_none());
}

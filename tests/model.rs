//! The U-Net: shapes, size, and the timestep input.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ddpm_avatars::model::sinusoidal_code;
use ddpm_avatars::{UNet, UNetConfig};

#[test]
fn default_config_is_the_papers_unet_at_64x64_with_about_8_9m_parameters() {
    let config = UNetConfig::new();
    assert_eq!(config.image_size, 64);
    assert_eq!(config.channel_multipliers, vec![1, 2, 2, 2]);
    let model: UNet = config.init(&Device::flex());
    let parameters = model.num_params();
    println!("default UNet parameters: {parameters}");
    // 8_952_067 when written: 17.9 MB as f16, the size of the page's download.
    assert!((8_800_000..9_100_000).contains(&parameters), "{parameters}");
}

#[test]
fn default_forward_keeps_the_image_shape() {
    let device = Device::flex();
    let model = UNetConfig::new().init(&device);
    let x = Tensor::<4>::zeros([2, 3, 64, 64], &device);
    let t = Tensor::<1>::from_floats([0.0, 999.0], &device);
    assert_eq!(model.forward(x, t).dims(), [2, 3, 64, 64]);
}

#[test]
fn tiny_forward_keeps_the_image_shape_and_is_small() {
    let device = Device::flex();
    let config = UNetConfig::tiny();
    let model = config.init(&device);
    println!("tiny UNet parameters: {}", model.num_params());
    assert!(model.num_params() < 300_000);
    let x = Tensor::<4>::ones([3, 3, 16, 16], &device);
    let t = Tensor::<1>::from_floats([1.0, 50.0, 900.0], &device);
    assert_eq!(model.forward(x, t).dims(), [3, 3, 16, 16]);
}

#[test]
fn time_embedding_differs_between_timesteps() {
    let device = Device::flex();
    let code = sinusoidal_code(Tensor::<1>::from_floats([0.0, 1.0, 500.0, 999.0], &device), 64);
    assert_eq!(code.dims(), [4, 64]);
    let rows: Vec<f32> = code.into_data().try_into_vec().unwrap();
    let row = |i: usize| &rows[i * 64..(i + 1) * 64];
    // t = 0: sin part 0, cos part 1.
    assert!(
        row(0)[..32].iter().all(|v| v.abs() < 1e-6)
            && row(0)[32..].iter().all(|v| (v - 1.0).abs() < 1e-6)
    );
    for (a, b) in [(0, 1), (1, 2), (2, 3), (0, 3)] {
        let distance: f32 = row(a).iter().zip(row(b)).map(|(x, y)| (x - y).powi(2)).sum();
        assert!(distance > 0.1, "t rows {a} and {b} too close: {distance}");
    }
    let model = UNetConfig::tiny().init(&device);
    let embedded: Vec<f32> = model
        .time_embedding
        .forward(Tensor::<1>::from_floats([3.0, 700.0], &device))
        .into_data()
        .try_into_vec()
        .unwrap();
    let width = embedded.len() / 2;
    assert_ne!(embedded[..width], embedded[width..]);
}

#[test]
fn invalid_configs_are_explained() {
    let bad_groups = UNetConfig::tiny().with_norm_groups(5);
    assert!(bad_groups.validate().unwrap_err().contains("norm_groups"));
    let bad_size = UNetConfig::new().with_image_size(60);
    assert!(bad_size.validate().unwrap_err().contains("divisible"));
    assert!(UNetConfig::new().with_channel_multipliers(vec![]).validate().is_err());
    assert!(UNetConfig::new().validate().is_ok() && UNetConfig::tiny().validate().is_ok());
}

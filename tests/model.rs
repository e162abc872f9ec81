//! The U-Net: shapes, size, and the timestep input.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor};
use ddpm_avatars::model::sinusoidal_code;
use ddpm_avatars::{UNet, UNetConfig};

#[test]
fn default_config_is_the_papers_unet_at_64x64_with_8_952_067_parameters() {
    let config = UNetConfig::new();
    assert_eq!(config.image_size, 64);
    assert_eq!(config.channel_multipliers, vec![1, 2, 2, 2]);
    let model: UNet = config.init(&Device::flex());

    // Counted by hand from the architecture (Appendix B at base 64, widths 64-128-128-128,
    // 2 blocks per level, attention at 16x16, time embedding 256), in burn's layer layouts.
    let conv = |i: usize, o: usize, k: usize| o * i * k * k + o;
    let linear = |i: usize, o: usize| i * o + o;
    let norm = |c: usize| 2 * c;
    let res = |i: usize, o: usize| {
        let skip = if i == o { 0 } else { conv(i, o, 1) };
        norm(i) + conv(i, o, 3) + linear(256, o) + norm(o) + conv(o, o, 3) + skip
    };
    let attention = |c: usize| norm(c) + linear(c, 3 * c) + linear(c, c);
    let down = 2 * res(64, 64) + conv(64, 64, 3) // 64 px
        + res(64, 128) + res(128, 128) + conv(128, 128, 3) // 32 px
        + 2 * (res(128, 128) + attention(128)) + conv(128, 128, 3) // 16 px
        + 2 * res(128, 128); // 8 px
    let middle = 2 * res(128, 128) + attention(128);
    // Up: each block concatenates one skip (64 or 128 channels, popped in reverse).
    let up = 3 * res(256, 128) + conv(128, 128, 3) // 8 px
        + 3 * (res(256, 128) + attention(128)) + conv(128, 128, 3) // 16 px
        + 2 * res(256, 128) + res(192, 128) + conv(128, 128, 3) // 32 px
        + res(192, 64) + 2 * res(128, 64); // 64 px
    let ends = linear(64, 256) + linear(256, 256) + conv(3, 64, 3) + norm(64) + conv(64, 3, 3);
    let by_hand = down + middle + up + ends;
    assert_eq!(by_hand, 8_952_067);
    assert_eq!(model.num_params(), by_hand);
    assert_eq!(config.plan().parameter_count(), by_hand as u64);
}

#[test]
fn the_plan_lists_exactly_the_parameters_the_built_model_has() {
    let device = Device::flex();
    let configs = [
        UNetConfig::new(),
        UNetConfig::tiny(),
        UNetConfig::tiny().with_res_blocks_per_level(3).with_attention_resolutions(vec![16, 8]),
        UNetConfig::tiny()
            .with_channel_multipliers(vec![1, 2, 4])
            .with_attention_resolutions(vec![]),
        UNetConfig::tiny().with_image_size(32).with_channel_multipliers(vec![2, 1, 3]),
    ];
    for config in configs {
        let model = config.init(&device);
        let built: BTreeMap<String, Vec<usize>> = model
            .collect(None, None, false)
            .into_iter()
            .map(|tensor| (tensor.name.clone(), tensor.shape.to_vec()))
            .collect();
        assert_eq!(config.plan().parameter_shapes(), built, "{config:?}");
        assert_eq!(config.plan().parameter_count(), model.num_params() as u64);
    }
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

//! The trainer's GPU path computes what its CPU path computes. burn's Vulkan backend runs
//! here without a GPU, on SwiftShader (the CPU Vulkan driver Debian's chromium ships), so
//! the kernels a GPU run uses are checked against flex before any GPU minutes are spent:
//!
//! 1. every operation of the U-Net but the matrix product (3x3 and 1x1 convolutions,
//!    GroupNorm, SiLU, sin/cos, nearest upsampling, softmax), its value and its gradients;
//! 2. the matrix product (linear layers, attention). Where it agrees, the tiny U-Net takes the
//!    same training steps on the same inputs on Vulkan and on flex, and the losses and weights
//!    must agree. Where it does not, the trainer's pre-flight check must refuse the device,
//!    so `train` never spends a run on it. SwiftShader in chromium 156 is such a device: burn's
//!    SPIR-V matmul kernels return zeros there (SwiftShader logs "UNREACHABLE: TypePointer"
//!    while compiling them), while the same kernels through WGSL (the page's WebGPU path, on
//!    the same SwiftShader) agree with the CPU.
//!
//! Needs Debian's chromium (`make browser`); `make test` installs it first.

#![cfg(feature = "gpu")]

use std::path::Path;
use std::process::Command;

use burn::module::Module;
use burn::nn::GroupNormConfig;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::{conv2d, interpolate};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, DeviceKind, Distribution, Tensor, TensorData};
use ddpm_avatars::noise::{NoiseStream, standard_normal};
use ddpm_avatars::weights::DatasetInfo;
use ddpm_avatars::{NoiseSchedule, ScheduleConfig, UNetConfig};
use trainer::data::ImageDataset;
use trainer::device::DeviceChoice;
use trainer::precision::Precision;
use trainer::train::{RunConfig, StepInputs, optimise_on, optimizer};

mod common;
use common::{all_values, generated_images, max_difference};

/// Set in the child process that talks to SwiftShader.
const CHILD: &str = "DDPM_TRAINER_VULKAN_CHILD";
const SWIFTSHADER_ICD: &str = "/usr/lib/chromium/vk_swiftshader_icd.json";
/// chromium's own Vulkan loader (`libvulkan.so.1`) sits next to its SwiftShader driver.
const CHROMIUM_LIBRARIES: &str = "/usr/lib/chromium";

const STEPS: u64 = 6;
const BATCH: usize = 4;
/// Per-step loss, relative: the two backends sum in different orders (f32), nothing more.
const LOSS_TOLERANCE: f32 = 1e-3;
/// One operation's value or gradient, relative to its largest magnitude. f32 kernels that
/// sum in another order differ by ~1e-6; SwiftShader's sin/cos are the least exact (~2e-4).
const OPERATION_TOLERANCE: f32 = 1e-3;
/// Weights after the last step, absolute. Each Adam step moves a weight by about the
/// learning rate (here up to 2e-3 a step, 1.2e-2 in all), so a kernel that got a gradient
/// wrong moves weights by that order; rounding moves them by far less.
const WEIGHT_TOLERANCE: f32 = 1e-4;

#[test]
fn vulkan_kernels_on_swiftshader_match_the_cpu_or_are_refused() {
    if std::env::var_os(CHILD).is_some() {
        check_on_swiftshader();
        return;
    }
    // The dynamic linker reads LD_LIBRARY_PATH when a process starts, so the comparison runs
    // in a child of this test binary that starts with chromium's Vulkan loader and driver.
    assert!(
        Path::new(SWIFTSHADER_ICD).exists(),
        "{SWIFTSHADER_ICD} is missing: this test runs burn's Vulkan backend on chromium's \
         SwiftShader driver; install Debian's chromium (`make browser`)"
    );
    let runtime_dir = std::env::temp_dir().join(format!("trainer-vulkan-{}", std::process::id()));
    std::fs::create_dir_all(&runtime_dir).unwrap();
    let test = "vulkan_kernels_on_swiftshader_match_the_cpu_or_are_refused";
    let status = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("LD_LIBRARY_PATH", CHROMIUM_LIBRARIES)
        .env("VK_ICD_FILENAMES", SWIFTSHADER_ICD)
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .status()
        .expect("start the test binary again for SwiftShader");
    let _ = std::fs::remove_dir_all(&runtime_dir);
    assert!(status.success(), "the Vulkan comparison failed (its output is above)");
}

fn check_on_swiftshader() {
    let (cpu, gpu) = (Device::flex(), Device::vulkan(DeviceKind::DefaultDevice));
    check_operations(&cpu.clone().autodiff(), &gpu.clone().autodiff());
    let config = tiny_run();
    let preflight =
        DeviceChoice::Vulkan.check_agrees_with_cpu(&config.model, config.schedule, &gpu);
    if matmul_agrees(&cpu, &gpu) {
        let largest = preflight.expect("the U-Net's forward pass on Vulkan agrees with the CPU");
        println!("U-Net forward pass: largest difference from the CPU {largest:.2e}");
        compare_training_steps(&config);
    } else {
        let refusal = preflight.expect_err(
            "matmul is wrong on this driver, yet the pre-flight check let the U-Net through",
        );
        println!(
            "matmul is wrong on this Vulkan driver, and `train` refuses it: {refusal:#}\n\
             NOTE: the training comparison needs a driver whose matmul works"
        );
    }
}

/// Each U-Net operation but matmul, on the same inputs on both (autodiff) devices: the
/// output and the gradient of `sum(output * probe)` with respect to every input agree.
fn check_operations(cpu: &Device, gpu: &Device) {
    let normal = |shape: [usize; 4]| {
        Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &Device::flex())
    };
    let x = normal([2, 32, 16, 16]);
    let options = |padding| ConvOptions::new([1, 1], [padding, padding], [1, 1], 1);
    let norm = GroupNormConfig::new(8, 32);
    let upsample = InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([32, 32]);
    type Operation<'a> = (&'a str, Vec<Tensor<4>>, Box<dyn Fn(&[Tensor<4>]) -> Tensor<4> + 'a>);
    let operations: Vec<Operation> = vec![
        (
            "conv 3x3",
            vec![x.clone(), normal([16, 32, 3, 3])],
            Box::new(|i| conv2d(i[0].clone(), i[1].clone(), None, options(1))),
        ),
        (
            "conv 1x1",
            vec![x.clone(), normal([16, 32, 1, 1])],
            Box::new(|i| conv2d(i[0].clone(), i[1].clone(), None, options(0))),
        ),
        (
            "GroupNorm",
            vec![x.clone()],
            Box::new(|i| norm.init(&i[0].device()).forward(i[0].clone())),
        ),
        ("SiLU", vec![x.clone()], Box::new(|i| silu(i[0].clone()))),
        ("sin + cos", vec![x.clone()], Box::new(|i| i[0].clone().sin() + i[0].clone().cos() * 2)),
        ("upsample", vec![x.clone()], Box::new(|i| interpolate(i[0].clone(), upsample.clone()))),
        ("softmax", vec![x], Box::new(|i| softmax(i[0].clone(), 3))),
    ];
    for (name, inputs, operation) in &operations {
        let [(cpu_out, cpu_grads), (gpu_out, gpu_grads)] =
            [cpu, gpu].map(|device| value_and_gradients(inputs, operation, device));
        let mut worst = relative_difference(&cpu_out, &gpu_out);
        for (cpu_grad, gpu_grad) in cpu_grads.iter().zip(&gpu_grads) {
            worst = worst.max(relative_difference(cpu_grad, gpu_grad));
        }
        println!("{name}: value and gradients within {worst:.1e} of the CPU's (relative)");
        assert!(
            worst <= OPERATION_TOLERANCE,
            "{name} on Vulkan differs from the CPU by {worst:.2e} relative to its largest value \
             (tolerance {OPERATION_TOLERANCE:e})"
        );
    }
}

/// Output and input gradients of `operation` on `device`, read back.
fn value_and_gradients(
    inputs: &[Tensor<4>],
    operation: &dyn Fn(&[Tensor<4>]) -> Tensor<4>,
    device: &Device,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let inputs: Vec<Tensor<4>> = inputs
        .iter()
        .map(|input| Tensor::from_data(input.to_data(), device).require_grad())
        .collect();
    let output = operation(&inputs);
    let probe = Tensor::<4>::from_data(
        TensorData::new(
            standard_normal(7, NoiseStream::Aux(1), output.shape().num_elements()),
            output.shape(),
        ),
        device,
    );
    let gradients = (output.clone() * probe).sum().backward();
    let read = |tensor: Tensor<4>| tensor.into_data().try_to_vec::<f32>().unwrap();
    let grads = inputs
        .iter()
        .map(|input| read(input.grad(&gradients).expect("every input takes part")))
        .collect();
    (read(output), grads)
}

/// Largest difference relative to the largest magnitude of `expected`.
fn relative_difference(expected: &[f32], found: &[f32]) -> f32 {
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    max_difference(expected, found) / scale
}

/// A [64, 32] x [32, 48] product on both devices agrees within [`OPERATION_TOLERANCE`].
fn matmul_agrees(cpu: &Device, gpu: &Device) -> bool {
    let random = |shape| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), cpu);
    let (a, b) = (random([64, 32]), random([32, 48]));
    let read = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let expected = read(a.clone().matmul(b.clone()));
    let found = read(a.to_device(gpu).matmul(b.to_device(gpu)));
    let difference = relative_difference(&expected, &found);
    println!("matmul: within {difference:.1e} of the CPU's (relative)");
    difference <= OPERATION_TOLERANCE
}

/// The tiny U-Net takes [`STEPS`] optimiser steps on the same inputs on Vulkan and on flex.
fn compare_training_steps(config: &RunConfig) {
    let cpu = Device::flex().autodiff();
    let gpu = Device::vulkan(DeviceKind::DefaultDevice).autodiff();
    let schedule = NoiseSchedule::new(config.schedule);
    let dataset = ImageDataset::from_packed(16, generated_images(32, 16)).unwrap();
    let mut on_cpu = config.model.init(&cpu);
    let mut on_gpu = on_cpu.clone().fork(&gpu);
    let (mut cpu_optimizer, mut gpu_optimizer) = (optimizer(), optimizer());
    let start = all_values(&on_cpu.valid());
    for step in 0..STEPS {
        let inputs = |device: &Device| step_inputs(&dataset, step, device);
        let cpu_loss;
        let gpu_loss;
        (on_cpu, cpu_loss) =
            optimise_on(on_cpu, &mut cpu_optimizer, inputs(&cpu), config, &schedule, step).unwrap();
        (on_gpu, gpu_loss) =
            optimise_on(on_gpu, &mut gpu_optimizer, inputs(&gpu), config, &schedule, step).unwrap();
        let relative = (gpu_loss - cpu_loss).abs() / cpu_loss;
        println!(
            "step {step}: loss CPU {cpu_loss:.6}, Vulkan {gpu_loss:.6} (relative {relative:.1e})"
        );
        assert!(
            relative <= LOSS_TOLERANCE,
            "step {step}: Vulkan loss {gpu_loss} vs CPU {cpu_loss} (relative {relative:.2e}, \
             tolerance {LOSS_TOLERANCE:e})"
        );
    }
    let (cpu_weights, gpu_weights) = (all_values(&on_cpu.valid()), all_values(&on_gpu.valid()));
    let moved = max_difference(&cpu_weights, &start);
    let apart = max_difference(&cpu_weights, &gpu_weights);
    println!(
        "after {STEPS} steps: weights moved up to {moved:.2e}, CPU and Vulkan {apart:.2e} apart"
    );
    assert!(moved > 10.0 * WEIGHT_TOLERANCE, "training barely moved the weights ({moved})");
    assert!(
        apart <= WEIGHT_TOLERANCE,
        "after {STEPS} steps the Vulkan weights are {apart} from the CPU's (tolerance \
         {WEIGHT_TOLERANCE})"
    );
}

/// The tiny U-Net without dropout (its masks come from each backend's own generator), a
/// short warm-up so the steps are not all tiny.
fn tiny_run() -> RunConfig {
    RunConfig {
        model: UNetConfig::tiny().with_dropout(0.0),
        schedule: ScheduleConfig::default(),
        data: "generated".into(),
        dataset: DatasetInfo { name: "discs".into(), licence: "CC0".into() },
        batch_size: BATCH,
        learning_rate: 2e-3,
        warmup_steps: 2,
        grad_clip: 1.0,
        ema_decay: 0.999,
        seed: 1,
        checkpoint_every: 1000,
        log_every: 1000,
        parent: None,
        parent_steps: 0,
        parent_images: 0,
        parent_cpu_seconds: 0.0,
        lineage: Vec::new(),
        precision: Precision::F32,
    }
}

/// Step `step`'s images, timesteps (spread over 0..T) and noise, the same numbers on every
/// device: the noise comes from the project's CPU generator, not the device's.
fn step_inputs(dataset: &ImageDataset, step: u64, device: &Device) -> StepInputs {
    let size = dataset.image_size();
    let shape = [BATCH, 3, size, size];
    let batch = dataset.batch(1, step, BATCH);
    let noise = standard_normal(step, NoiseStream::Aux(0), BATCH * 3 * size * size);
    StepInputs {
        x0: Tensor::from_data(TensorData::new(batch.values, shape), device),
        timesteps: (0..BATCH).map(|i| (37 + 263 * i + 101 * step as usize) % 1000).collect(),
        noise: Tensor::from_data(TensorData::new(noise, shape), device),
    }
}

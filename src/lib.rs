//! # ddpm-avatars
//!
//! A denoising diffusion probabilistic model (Ho et al. 2020) for 64x64 avatars: the U-Net
//! noise predictor, the noise schedule, the DDPM and DDIM samplers, seeded noise and the
//! weights file. The trainer (native, GPU) and the web page (wasm, WebGPU or CPU) both use
//! exactly this code.
//!
//! Data flow: `weights::load_*` -> [`model::UNet`] -> [`sampler::Sampler::step`] per step ->
//! [`image`] pixels ([`readback`]: what the page reads from the device, in one transfer). [`web`] (wasm32 only) is the thin adapter the page calls.

pub mod image;
pub mod model;
pub mod noise;
pub mod readback;
pub mod sampler;
pub mod schedule;
pub mod weights;

pub use model::{UNet, UNetConfig};
pub use sampler::{Sampler, SamplerConfig, SamplerKind};
pub use schedule::{BetaSchedule, NoiseSchedule, ScheduleConfig};

#[cfg(target_arch = "wasm32")]
pub mod web;

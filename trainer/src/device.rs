//! Which device trains: a GPU through burn's Vulkan or CUDA backend, or the CPU (`flex`).

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use ddpm_avatars::model::perturbed;
use ddpm_avatars::weights::{
    DatasetInfo, Fingerprint, FingerprintMismatch, TrainingInfo, WeightsMetadata,
};
use ddpm_avatars::{ScheduleConfig, UNetConfig};

/// The device a command runs on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first GPU through Vulkan (burn's wgpu runtime with the Vulkan API pinned).
    Vulkan,
    /// The first GPU through wgpu with its automatic API choice.
    Wgpu,
    /// The first NVIDIA GPU through CUDA (kernels compiled by NVRTC; trainer feature `cuda`).
    Cuda,
    /// The CPU through LibTorch, PyTorch's own kernels (burn's deprecated `tch` backend;
    /// trainer feature `tch`). About 2.5x flex's training speed on the small model.
    Libtorch,
    /// The CPU, with burn's `flex` backend (slow; for tests and tiny models).
    Cpu,
}

impl DeviceChoice {
    /// The value of `BURN_DEVICE` that makes burn's `Device::default()` agree with this
    /// choice. burn creates some state (e.g. a restored optimizer's moments) on the default
    /// device, which must not be a GPU the machine does not have.
    pub fn burn_device_name(self) -> &'static str {
        match self {
            Self::Vulkan => "vulkan",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Libtorch => "tch",
            Self::Cpu => "flex",
        }
    }

    /// The trainer feature that compiles this device in (the CPU is always there).
    fn feature(self) -> &'static str {
        match self {
            Self::Vulkan => "gpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Libtorch => "tch",
            Self::Cpu => "",
        }
    }

    /// Whether this build has the device's backend.
    fn built(self) -> bool {
        match self {
            Self::Vulkan => cfg!(feature = "gpu"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
            Self::Libtorch => cfg!(feature = "tch"),
            Self::Cpu => true,
        }
    }

    /// Creates the device (without autodiff).
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "gpu")]
            Self::Vulkan => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(burn::tensor::DeviceIndex::Default)),
            // burn-tch is deprecated upstream (README, "LibTorch"); it is still the fastest
            // correct CPU path this project can build offline.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Self::Libtorch => Ok(Device::libtorch()),
            #[allow(unreachable_patterns)]
            missing => bail!(
                "this trainer was built without the `{}` feature (--device {}); rebuild with \
                 `--features {}` or use --device cpu",
                missing.feature(),
                missing.name(),
                missing.feature()
            ),
        }
    }

    /// Every device this build can compute on (`bench --all`): the CPU; the GPU through
    /// Vulkan (SPIR-V shaders) with `gpu`, or through wgpu's WGSL shaders with `wgpu` alone;
    /// CUDA with `cuda`.
    pub fn in_this_build() -> Vec<Self> {
        let wgsl_only = Self::Wgpu.built() && !Self::Vulkan.built();
        [Self::Cpu, Self::Libtorch, Self::Vulkan, Self::Cuda]
            .into_iter()
            .filter(|choice| choice.built())
            .chain(wgsl_only.then_some(Self::Wgpu))
            .collect()
    }

    /// The default: the fastest GPU backend this build has (CUDA, then Vulkan, then wgpu),
    /// else LibTorch on the CPU where built, else flex.
    pub fn default_choice() -> Self {
        [Self::Cuda, Self::Vulkan, Self::Wgpu, Self::Libtorch]
            .into_iter()
            .find(|choice| choice.built())
            .unwrap_or(Self::Cpu)
    }

    /// Rejects a GPU choice early with a clear message when its driver library is missing:
    /// the Vulkan loader, or the CUDA driver that cudarc loads at run time.
    pub fn check_available(self) -> Result<()> {
        let (library, install) = match self {
            // Linked at build time (with an rpath, see trainer/build.rs): a missing libtorch
            // stops the program before main, so there is nothing to check here.
            Self::Cpu | Self::Libtorch => return Ok(()),
            Self::Vulkan | Self::Wgpu => {
                ("libvulkan.so.1", "the Vulkan loader (Debian: apt-get install libvulkan1)")
            }
            Self::Cuda => ("libcuda.so.1", "the NVIDIA driver's libcuda.so.1"),
        };
        if !shared_library_found(library) {
            bail!(
                "--device {} needs {install} and a GPU driver; use --device cpu to run on the CPU",
                self.name()
            );
        }
        Ok(())
    }

    /// Refuses a GPU whose kernels compute something else than the CPU: the U-Net `model`
    /// (perturbed, since a fresh one outputs exactly 0) runs on the weights fingerprint's input
    /// here and on flex, and must agree within the fingerprint's tolerance. Returns the largest
    /// difference. A GPU session must not spend its minutes training on wrong kernels (an
    /// autotuned build picks kernels per driver and shape that no test here has run).
    pub fn check_agrees_with_cpu(
        self,
        model: &UNetConfig,
        schedule: ScheduleConfig,
        device: &Device,
    ) -> Result<f32> {
        let cpu = Device::flex();
        let on_cpu = perturbed(model.init(&cpu), 0, 0.05);
        let on_device = on_cpu.clone().to_device(device);
        let metadata = WeightsMetadata::new(
            model.clone(),
            schedule,
            DatasetInfo { name: "device check".into(), licence: String::new() },
            TrainingInfo::default(),
        );
        let expected = Fingerprint::compute(&on_cpu, &metadata, &cpu)?;
        let found = Fingerprint::compute(&on_device, &metadata, device)
            .with_context(|| format!("running the U-Net on --device {}", self.name()))?;
        expected.check(&found.values).or_else(|mismatch| {
            let why = match mismatch {
                FingerprintMismatch::Differs { largest } => format!("by up to {largest}"),
                other => other.to_string(),
            };
            bail!(
                "--device {} computes the U-Net differently from the CPU ({why}; tolerance {}): \
                 this build's GPU kernels give wrong results on this driver. An autotuned \
                 build (`gpu-tuned`, `cuda`) may pick other kernels than the plain `gpu` one \
                 (or the other way round); or use --device cpu",
                self.name(),
                ddpm_avatars::weights::FINGERPRINT_TOLERANCE
            )
        })
    }

    /// The `--device` value that selects this choice.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).map_or("?".into(), |v| v.get_name().into())
    }
}

/// Whether the dynamic linker would find `library`: on LD_LIBRARY_PATH (e.g. chromium's own
/// Vulkan loader with its SwiftShader driver, to rehearse without a GPU; the CUDA driver of a
/// container) or in the system's library folders. Only Linux is checked; elsewhere, yes.
fn shared_library_found(library: &str) -> bool {
    let library_path = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
    !cfg!(target_os = "linux")
        || std::env::split_paths(&library_path)
            .chain(
                [
                    "/usr/lib/x86_64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/usr/lib64",
                    "/usr/lib",
                ]
                .map(Into::into),
            )
            .any(|dir| dir.join(library).exists())
}

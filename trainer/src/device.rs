//! Which device trains: a GPU through burn's Vulkan backend, or the CPU (`flex`).

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The device a command runs on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first GPU through Vulkan (burn's wgpu runtime with the Vulkan API pinned).
    Vulkan,
    /// The first GPU through wgpu with its automatic API choice.
    Wgpu,
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
            Self::Cpu => "flex",
        }
    }

    /// Creates the device (without autodiff).
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "gpu")]
            Self::Vulkan => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "gpu")]
            Self::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "gpu"))]
            Self::Vulkan | Self::Wgpu => {
                bail!("this trainer was built without the `gpu` feature; use --device cpu")
            }
        }
    }

    /// The default: the GPU when the trainer was built with GPU support.
    pub fn default_choice() -> Self {
        if cfg!(feature = "gpu") { Self::Vulkan } else { Self::Cpu }
    }

    /// Rejects a GPU choice early with a clear message when no Vulkan loader is present.
    pub fn check_available(self) -> Result<()> {
        if self == Self::Cpu {
            return Ok(());
        }
        let loader_present =
            ["/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/usr/lib/libvulkan.so.1"]
                .iter()
                .any(|path| std::path::Path::new(path).exists())
                || !cfg!(target_os = "linux");
        if !loader_present {
            bail!(
                "--device {} needs the Vulkan loader (Debian: apt-get install libvulkan1) and a GPU \
                 driver; use --device cpu to run on the CPU",
                self.burn_device_name()
            );
        }
        Ok(())
    }
}

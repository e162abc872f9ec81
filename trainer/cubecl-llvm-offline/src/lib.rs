//! The items of cubecl-llvm 0.11.3 that cubecl-cuda 0.11.3 names, without LLVM.
//!
//! cubecl-cuda compiles kernels with one of two backends. Built with its `cpp` feature (as the
//! trainer's `cuda` feature does) it selects CUDA C++ through NVRTC, and the LLVM backend is
//! never chosen: `CudaBackend::default()` is `Cpp`. The LLVM backend's types must still exist
//! for cubecl-cuda to compile; here they do, and compiling with them is an error that says why.

use cubecl_core::ir::amd::GfxArch;
#[cfg(feature = "nvptx")]
use cubecl_core::ir::nvidia::SmArch;
use cubecl_core::prelude::KernelDefinition;
use cubecl_environment::backtrace::BackTrace;
use cubecl_runtime::compiler::CompilationError;
use cubecl_runtime::kernel::BufferIOAttr;

/// Compilation targets; only the one cubecl-cuda configures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget {
    /// PTX for NVIDIA GPUs.
    #[default]
    Nvptx,
}

/// The LLVM backend's compiler: refuses every kernel (see the crate docs).
#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    /// The target cubecl-cuda asks for.
    pub target: LlvmTarget,
}

/// The options cubecl-cuda fills in for the LLVM backend.
#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// AMDGPU architecture (unused by CUDA).
    pub arch: Option<GfxArch>,
    /// NVPTX architecture.
    #[cfg(feature = "nvptx")]
    pub sm_arch: Option<SmArch>,
    /// PTX version to emit.
    #[cfg(feature = "nvptx")]
    pub ptx_version: Option<nvptx::ptx_version::PtxVersion>,
    /// Scalars and static metadata in the kernel parameter block.
    pub grid_constants: bool,
}

/// A compiled PTX module, as the LLVM backend would hand it to the CUDA runtime.
#[derive(Clone, Debug)]
pub struct NvptxModule {
    /// NUL-terminated PTX assembly.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point symbol.
    pub entrypoint: String,
    /// IR for logging and cache keys.
    pub ir: String,
    /// Shared memory required per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// What the LLVM backend compiles to.
#[derive(Clone, Debug)]
pub enum PlironArtifact {
    /// PTX for the CUDA driver.
    NvptxCode(NvptxModule),
    /// Never built here: the real crate's CPU JIT, named so cubecl-cuda's match keeps its
    /// catch-all arm meaningful.
    Unavailable,
}

impl PlironCompiler {
    /// Always an error: this build has no LLVM. cubecl-cuda reaches it only with its `cpp`
    /// feature off, which the trainer's `cuda` feature never does.
    pub fn compile(
        &mut self,
        _kernel: KernelDefinition,
        _options: &PlironOptions,
    ) -> Result<PlironArtifact, CompilationError> {
        Err(CompilationError::Generic {
            reason: "this build has no LLVM backend (cubecl-llvm is the offline stand-in): \
                     build cubecl-cuda with its `cpp` feature, as `trainer --features cuda` does"
                .into(),
            backtrace: BackTrace::capture(),
        })
    }

    /// The language tag cubecl's compilation logs use for this backend.
    pub fn lang_tag(&self) -> &'static str {
        "llvm"
    }
}

/// PTX versions.
#[cfg(feature = "nvptx")]
pub mod nvptx {
    /// The PTX ISA version for a driver.
    pub mod ptx_version {
        use core::fmt;

        /// A PTX ISA version as the NVPTX target feature spells it (8.7 is `87`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct PtxVersion(u32);

        /// The first CUDA driver (as `cuDriverGetVersion` reports it: 12.8 is 12080) to load
        /// each PTX version, newest first. The same table as cubecl-llvm's; it only names
        /// cache entries here, since NVRTC picks the PTX version itself.
        const DRIVER_PTX: &[(i32, u32)] = &[
            (13030, 93),
            (13020, 92),
            (13010, 91),
            (13000, 90),
            (12090, 88),
            (12080, 87),
            (12050, 85),
            (12040, 84),
            (12030, 83),
            (12020, 82),
            (12010, 81),
            (12000, 80),
            (11080, 78),
        ];

        impl PtxVersion {
            /// The newest version a driver of CUDA `driver` loads; `None` for older drivers.
            pub fn for_driver(driver: i32) -> Option<Self> {
                DRIVER_PTX
                    .iter()
                    .find(|(first_driver, _)| driver >= *first_driver)
                    .map(|(_, ptx)| Self(*ptx))
            }
        }

        impl fmt::Display for PtxVersion {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "ptx{}", self.0)
            }
        }
    }
}

/// Device features narrowed for the LLVM backend.
pub mod shared {
    /// Which features a GPU target's lowering supports.
    pub mod lowered_features {
        use cubecl_core::ir::DeviceProperties;

        /// The GPU target a device's features are narrowed for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GpuTarget {
            /// NVIDIA PTX.
            Nvptx,
        }

        /// Leaves `props` as they are. cubecl-cuda calls this only when the LLVM backend is
        /// selected, which never happens with its `cpp` feature; and a kernel sent to that
        /// backend fails to compile with a message anyway.
        pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
    }
}

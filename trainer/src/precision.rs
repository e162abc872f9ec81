//! Mixed precision: the U-Net's forward and backward passes in bf16, with f32 master weights.
//!
//! burn 0.22 has no autocast, so it is done here, per step: [`for_compute`] casts the f32
//! parameters to bf16 through the autodiff graph (a cast is differentiable, and its backward
//! casts the gradient back), so the gradients land on the f32 parameters and Adam updates
//! them in f32. GroupNorm (its statistics) and attention (its softmax) compute in f32 inside
//! the model (`ddpm_avatars::model`), and the loss is taken in f32. bf16 has f32's exponent
//! range, so no loss scaling is needed, unlike f16.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{FloatDType, Tensor};
use ddpm_avatars::UNet;
use serde::{Deserialize, Serialize};

/// The number format of a training step's arithmetic (the weights are always kept in f32).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Convolutions, linear layers and activations in bf16; normalisation, attention, the loss
    /// and the optimiser in f32. Needs a backend with bf16 (CUDA, the CPU); burn 0.22's Vulkan
    /// backend has none.
    Bf16,
}

impl Precision {
    /// The dtype the U-Net's convolutions and linear layers compute in.
    pub fn compute_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

/// `model` with its parameters cast to `precision`'s compute dtype, except GroupNorm's scale
/// and shift (normalisation runs in f32). For f32, `model` itself.
pub fn for_compute(model: &UNet, precision: Precision) -> UNet {
    if precision == Precision::F32 {
        return model.clone();
    }
    model.clone().map(&mut CastForCompute { dtype: precision.compute_dtype(), norm_depth: 0 })
}

/// `x_t` in the compute dtype and the U-Net's prediction back in f32, around `forward`.
pub fn predict_in(
    precision: Precision,
    model: &UNet,
    x_t: Tensor<4>,
    timesteps: Tensor<1>,
) -> Tensor<4> {
    let compute = for_compute(model, precision);
    compute.forward(x_t.cast(precision.compute_dtype()), timesteps).cast(FloatDType::F32)
}

/// Casts every float parameter outside a GroupNorm.
struct CastForCompute {
    dtype: FloatDType,
    /// How many GroupNorm modules the traversal is inside (0 or 1).
    norm_depth: usize,
}

const GROUP_NORM: &str = "Struct:GroupNorm";

impl ModuleMapper for CastForCompute {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if container_type == GROUP_NORM {
            self.norm_depth += 1;
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if container_type == GROUP_NORM {
            self.norm_depth -= 1;
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.norm_depth > 0 {
            return param;
        }
        let dtype = self.dtype;
        param.map(|tensor| tensor.cast(dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::ModuleVisitor;
    use burn::tensor::{DType, Device};
    use ddpm_avatars::UNetConfig;

    /// Counts parameter dtypes, and those inside GroupNorms.
    #[derive(Default)]
    struct Dtypes {
        norm_depth: usize,
        outside: Vec<DType>,
        inside_norms: Vec<DType>,
    }

    impl ModuleVisitor for Dtypes {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.norm_depth += usize::from(container_type == GROUP_NORM);
        }
        fn exit_module(&mut self, _name: &str, container_type: &str) {
            self.norm_depth -= usize::from(container_type == GROUP_NORM);
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let dtype = param.val().dtype();
            if self.norm_depth > 0 { &mut self.inside_norms } else { &mut self.outside }
                .push(dtype);
        }
    }

    fn dtypes(model: &UNet) -> Dtypes {
        let mut visitor = Dtypes::default();
        model.visit(&mut visitor);
        visitor
    }

    #[test]
    fn bf16_casts_all_but_group_norm_and_f32_changes_nothing() {
        let model = UNetConfig::tiny().init(&Device::flex());
        let cast = dtypes(&for_compute(&model, Precision::Bf16));
        // The tiny U-Net: conv_in, conv_out, 8 residual blocks of 2 convs + time projection
        // (+ skip convs), attention, time MLP: dozens of tensors either way.
        assert!(cast.outside.len() > 20 && cast.inside_norms.len() > 10);
        assert!(cast.outside.iter().all(|&d| d == DType::BF16), "{:?}", cast.outside);
        assert!(cast.inside_norms.iter().all(|&d| d == DType::F32), "{:?}", cast.inside_norms);
        let same = dtypes(&for_compute(&model, Precision::F32));
        assert!(same.outside.iter().chain(&same.inside_norms).all(|&d| d == DType::F32));
    }
}

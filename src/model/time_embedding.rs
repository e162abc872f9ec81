//! The timestep input: a sinusoidal code of `t` followed by a two-layer MLP.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

/// Configuration of [`TimeEmbedding`].
#[derive(Config, Debug)]
pub struct TimeEmbeddingConfig {
    /// Width of the sinusoidal code (the U-Net's base channels in the DDPM paper).
    pub sinusoidal_dim: usize,
    /// Width of the embedding fed to every residual block (4x the base channels in the paper).
    pub embedding_dim: usize,
}

/// Turns timesteps into vectors: `Linear -> SiLU -> Linear` over a sinusoidal code
/// (Ho et al. 2020, Appendix B, following the Transformer's position encoding).
#[derive(Module, Debug)]
pub struct TimeEmbedding {
    /// First MLP layer, `sinusoidal_dim -> embedding_dim`.
    pub linear_1: Linear,
    /// Second MLP layer, `embedding_dim -> embedding_dim`.
    pub linear_2: Linear,
    /// Width of the sinusoidal code.
    pub sinusoidal_dim: usize,
}

impl TimeEmbeddingConfig {
    /// Builds the MLP on `device`.
    pub fn init(&self, device: &Device) -> TimeEmbedding {
        TimeEmbedding {
            linear_1: LinearConfig::new(self.sinusoidal_dim, self.embedding_dim).init(device),
            linear_2: LinearConfig::new(self.embedding_dim, self.embedding_dim).init(device),
            sinusoidal_dim: self.sinusoidal_dim,
        }
    }
}

impl TimeEmbedding {
    /// Embeds each batch item's timestep.
    ///
    /// # Shapes
    /// - timesteps: `[batch]` (0-based step indices as floats)
    /// - output: `[batch, embedding_dim]`
    pub fn forward(&self, timesteps: Tensor<1>) -> Tensor<2> {
        // The code in f32, then in the layers' dtype (bf16 with mixed precision).
        let dtype: FloatDType = self.linear_1.weight.val().dtype().into();
        let code = sinusoidal_code(timesteps, self.sinusoidal_dim).cast(dtype);
        self.linear_2.forward(silu(self.linear_1.forward(code)))
    }
}

/// `[sin(t w_0) .. sin(t w_{h-1}), cos(t w_0) .. cos(t w_{h-1})]` with
/// `w_i = 10000^(-i / (h - 1))`, `h = dim / 2`, as in the DDPM reference code.
///
/// # Shapes
/// - timesteps: `[batch]`; output: `[batch, dim]`
pub fn sinusoidal_code(timesteps: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let denominator = (half.max(2) - 1) as f64;
    let frequencies: Vec<f32> =
        (0..half).map(|i| (-(10_000f64.ln()) * i as f64 / denominator).exp() as f32).collect();
    let device = timesteps.device();
    let frequencies = Tensor::<2>::from_data(TensorData::new(frequencies, [1, half]), &device);
    let angles = timesteps.unsqueeze_dim::<2>(1) * frequencies;
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

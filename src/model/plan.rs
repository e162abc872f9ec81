//! The U-Net's architecture as plain data: which block sits where, with which widths.
//!
//! [`UNetConfig::init`](super::UNetConfig::init) builds the modules from this plan, and
//! [`UNetPlan::parameter_shapes`] lists every parameter's name and shape from it without
//! allocating a tensor, so a loader can compare a file's header with the configuration before
//! it builds anything (a 1 KB file must not be able to ask for 40 GB).

use std::collections::BTreeMap;

use super::UNetConfig;

/// A residual block (`in -> out` channels), optionally followed by self-attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResAttentionPlan {
    /// Channels in (for the up path: features plus the concatenated skip).
    pub in_channels: usize,
    /// Channels out.
    pub out_channels: usize,
    /// Whether self-attention follows the block (its resolution is listed in the config).
    pub attention: bool,
}

/// One resolution level: its layers and the resampling after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelPlan {
    /// Residual (+ attention) layers at this resolution.
    pub layers: Vec<ResAttentionPlan>,
    /// Channels of the down- or upsampling convolution after the layers, if any.
    pub resample: Option<usize>,
}

/// Every block of the U-Net, in the order the forward pass meets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UNetPlan {
    /// Image channels in and out.
    pub image_channels: usize,
    /// Width of the first level (and of `conv_in`'s output).
    pub base_channels: usize,
    /// Width of the timestep embedding.
    pub time_channels: usize,
    /// Down path, highest resolution first.
    pub down_blocks: Vec<LevelPlan>,
    /// Width of the bottleneck (res, attention, res).
    pub mid_channels: usize,
    /// Up path, lowest resolution first.
    pub up_blocks: Vec<LevelPlan>,
    /// Width of the last up level (input of `norm_out` and `conv_out`).
    pub out_channels: usize,
}

impl UNetPlan {
    /// Lays out the U-Net of `config` (Ho et al. 2020, Appendix B): the down path pushes every
    /// feature map on a skip stack, each up-path block pops one and concatenates it.
    pub fn new(config: &UNetConfig) -> Self {
        let last_level = config.channel_multipliers.len().saturating_sub(1);
        let attention_at = |resolution: usize| config.attention_resolutions.contains(&resolution);

        let mut skip_channels = vec![config.base_channels];
        let mut channels = config.base_channels;
        let mut resolution = config.image_size;
        let mut down_blocks = Vec::new();
        for (level, multiplier) in config.channel_multipliers.iter().enumerate() {
            let out_channels = config.base_channels * multiplier;
            let mut layers = Vec::new();
            for _ in 0..config.res_blocks_per_level {
                let attention = attention_at(resolution);
                layers.push(ResAttentionPlan { in_channels: channels, out_channels, attention });
                channels = out_channels;
                skip_channels.push(channels);
            }
            let resample = (level != last_level).then_some(channels);
            if resample.is_some() {
                skip_channels.push(channels);
                resolution /= 2;
            }
            down_blocks.push(LevelPlan { layers, resample });
        }
        let mid_channels = channels;

        let mut up_blocks = Vec::new();
        for (level, multiplier) in config.channel_multipliers.iter().enumerate().rev() {
            let out_channels = config.base_channels * multiplier;
            let mut layers = Vec::new();
            for _ in 0..=config.res_blocks_per_level {
                let skip = skip_channels.pop().unwrap_or(0);
                let attention = attention_at(resolution);
                layers.push(ResAttentionPlan {
                    in_channels: channels + skip,
                    out_channels,
                    attention,
                });
                channels = out_channels;
            }
            let resample = (level != 0).then_some(channels);
            if resample.is_some() {
                resolution *= 2;
            }
            up_blocks.push(LevelPlan { layers, resample });
        }

        Self {
            image_channels: config.image_channels,
            base_channels: config.base_channels,
            time_channels: config.time_channels(),
            down_blocks,
            mid_channels,
            up_blocks,
            out_channels: channels,
        }
    }

    /// Every parameter's name (its module path, as burn's stores name it) and shape, in the
    /// layout of burn's modules: `Conv2d` weight `[out, in, k, k]`, `Linear` weight
    /// `[in, out]`, `GroupNorm` `gamma`/`beta` `[channels]`.
    pub fn parameter_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        let mut shapes = Shapes::default();
        shapes.linear("time_embedding.linear_1", self.base_channels, self.time_channels);
        shapes.linear("time_embedding.linear_2", self.time_channels, self.time_channels);
        shapes.conv("conv_in", self.image_channels, self.base_channels, 3);
        for (path, blocks) in [("down_blocks", &self.down_blocks), ("up_blocks", &self.up_blocks)] {
            for (level, block) in blocks.iter().enumerate() {
                for (index, layer) in block.layers.iter().enumerate() {
                    let prefix = format!("{path}.{level}.layers.{index}");
                    shapes.res_block(&format!("{prefix}.res"), self.time_channels, layer);
                    if layer.attention {
                        shapes.attention(&format!("{prefix}.attention"), layer.out_channels);
                    }
                }
                if let Some(channels) = block.resample {
                    let name = if path == "down_blocks" { "downsample" } else { "upsample" };
                    shapes.conv(&format!("{path}.{level}.{name}.conv"), channels, channels, 3);
                }
            }
        }
        let mid = ResAttentionPlan {
            in_channels: self.mid_channels,
            out_channels: self.mid_channels,
            attention: false,
        };
        shapes.res_block("mid_block.res_1", self.time_channels, &mid);
        shapes.attention("mid_block.attention", self.mid_channels);
        shapes.res_block("mid_block.res_2", self.time_channels, &mid);
        shapes.group_norm("norm_out", self.out_channels);
        shapes.conv("conv_out", self.out_channels, self.image_channels, 3);
        shapes.0
    }

    /// Number of parameters, from the shapes alone.
    pub fn parameter_count(&self) -> u64 {
        self.parameter_shapes()
            .values()
            .map(|shape| shape.iter().map(|&d| d as u64).product::<u64>())
            .sum()
    }
}

/// Collects `(name, shape)` pairs per burn module kind.
#[derive(Default)]
struct Shapes(BTreeMap<String, Vec<usize>>);

impl Shapes {
    fn add(&mut self, name: String, shape: Vec<usize>) {
        self.0.insert(name, shape);
    }

    fn conv(&mut self, prefix: &str, in_channels: usize, out_channels: usize, kernel: usize) {
        self.add(format!("{prefix}.weight"), vec![out_channels, in_channels, kernel, kernel]);
        self.add(format!("{prefix}.bias"), vec![out_channels]);
    }

    fn linear(&mut self, prefix: &str, in_features: usize, out_features: usize) {
        self.add(format!("{prefix}.weight"), vec![in_features, out_features]);
        self.add(format!("{prefix}.bias"), vec![out_features]);
    }

    fn group_norm(&mut self, prefix: &str, channels: usize) {
        self.add(format!("{prefix}.gamma"), vec![channels]);
        self.add(format!("{prefix}.beta"), vec![channels]);
    }

    fn res_block(&mut self, prefix: &str, time_channels: usize, layer: &ResAttentionPlan) {
        let (inc, outc) = (layer.in_channels, layer.out_channels);
        self.group_norm(&format!("{prefix}.norm_1"), inc);
        self.conv(&format!("{prefix}.conv_1"), inc, outc, 3);
        self.linear(&format!("{prefix}.time_projection"), time_channels, outc);
        self.group_norm(&format!("{prefix}.norm_2"), outc);
        self.conv(&format!("{prefix}.conv_2"), outc, outc, 3);
        if inc != outc {
            self.conv(&format!("{prefix}.skip"), inc, outc, 1);
        }
    }

    fn attention(&mut self, prefix: &str, channels: usize) {
        self.group_norm(&format!("{prefix}.norm"), channels);
        self.linear(&format!("{prefix}.qkv"), channels, 3 * channels);
        self.linear(&format!("{prefix}.projection"), channels, channels);
    }
}

//! The convolutions of each model for one `h x w` image, computed from the architecture
//! without building it: what memory estimates scale with.
use crate::classifier::ModelKind;

/// One convolution: channels in and out, kernel side, and its output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel side (3 or 1).
    pub kernel: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

impl ConvShape {
    /// Elements of the output for one image.
    pub fn output_elems(&self) -> u64 {
        (self.c_out * self.h_out * self.w_out) as u64
    }

    /// Elements of the im2col buffer for one image (`c_in k^2 x h_out w_out`).
    pub fn im2col_elems(&self) -> u64 {
        (self.c_in * self.kernel * self.kernel * self.h_out * self.w_out) as u64
    }

    /// Weights.
    pub fn weights(&self) -> u64 {
        (self.c_in * self.c_out * self.kernel * self.kernel) as u64
    }
}

/// Every convolution of `kind` on a `h x w` image, in order.
pub fn conv_shapes(kind: ModelKind, h: usize, w: usize) -> Vec<ConvShape> {
    let down = |x: usize| x.div_ceil(2);
    let mut out = Vec::new();
    let mut push = |c_in, c_out, kernel, (h_out, w_out)| out.push(ConvShape { c_in, c_out, kernel, h_out, w_out });
    match kind {
        ModelKind::TinyCnn => {
            push(3, 16, 3, (h, w));
            push(16, 32, 3, (down(h), down(w)));
            push(32, 64, 3, (down(down(h)), down(down(w))));
        }
        ModelKind::Wrn40_2 | ModelKind::Wrn16_2 | ModelKind::Wrn28_10 => {
            let (depth, k) = match kind {
                ModelKind::Wrn40_2 => (40, 2),
                ModelKind::Wrn16_2 => (16, 2),
                _ => (28, 10),
            };
            let n = (depth - 4) / 6;
            let widths = [16, 16 * k, 32 * k, 64 * k];
            push(3, 16, 3, (h, w));
            let (mut hh, mut ww) = (h, w);
            for g in 0..3 {
                if g > 0 {
                    (hh, ww) = (down(hh), down(ww));
                }
                for i in 0..n {
                    let c_in = if i == 0 { widths[g] } else { widths[g + 1] };
                    push(c_in, widths[g + 1], 3, (hh, ww));
                    push(widths[g + 1], widths[g + 1], 3, (hh, ww));
                    if i == 0 && (c_in != widths[g + 1] || g > 0) {
                        push(c_in, widths[g + 1], 1, (hh, ww));
                    }
                }
            }
        }
        ModelKind::ResNet18 => {
            push(3, 64, 3, (h, w));
            let (mut hh, mut ww) = (h, w);
            let mut c_in = 64;
            for (li, &c_out) in [64, 128, 256, 512].iter().enumerate() {
                for i in 0..2 {
                    if i == 0 && li > 0 {
                        (hh, ww) = (down(hh), down(ww));
                    }
                    push(c_in, c_out, 3, (hh, ww));
                    push(c_out, c_out, 3, (hh, ww));
                    if i == 0 && li > 0 {
                        push(c_in, c_out, 1, (hh, ww));
                    }
                    c_in = c_out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build_model, ModelParams};

    #[test]
    fn convolution_weights_match_the_built_models() {
        for kind in ModelKind::ALL {
            let params = ModelParams::new(0, &candle::Device::Cpu);
            let _model = build_model(kind, 10, &params).unwrap();
            let conv: u64 = params
                .named_trainable_vars()
                .iter()
                .filter(|(_, v)| v.dims().len() == 4)
                .map(|(_, v)| v.elem_count() as u64)
                .sum();
            assert_eq!(conv, conv_shapes(kind, 32, 32).iter().map(ConvShape::weights).sum::<u64>(), "{kind:?}");
        }
    }
}

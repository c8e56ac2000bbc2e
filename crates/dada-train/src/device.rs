//! Which device a run uses: `auto` (CUDA when this build has the `cuda` feature and a device
//! answers, else the CPU), `cpu`, `cuda` or `cuda:N`.
use std::str::FromStr;

use candle::Device;

/// Whether this build was compiled with the `cuda` feature.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A device request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA device 0 when built with `cuda` and one answers, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device `N`.
    Cuda(usize),
}

/// A device request that cannot be met.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Not `auto`, `cpu`, `cuda` or `cuda:N`.
    #[error("--device '{0}': expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    /// CUDA asked of a build without the feature.
    #[error("--device {0}: this binary was built without the `cuda` feature; build with `tools/cuda/build.sh -p xtask` (or `cargo build --release --features cuda`), or use --device cpu")]
    NotBuilt(String),
    /// The CUDA device does not answer.
    #[error("--device cuda:{ordinal}: no usable CUDA device ({reason})")]
    Unavailable {
        /// The ordinal asked for.
        ordinal: usize,
        /// What the driver said.
        reason: String,
    },
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| DeviceError::Unknown(crate::error::clip(other))),
        }
    }
}

/// The device `spec` asks for.
pub fn select(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Auto if !CUDA_BUILT => Ok(Device::Cpu),
        DeviceSpec::Auto => Ok(Device::new_cuda(0).unwrap_or(Device::Cpu)),
        DeviceSpec::Cuda(n) if !CUDA_BUILT => Err(DeviceError::NotBuilt(format!("cuda:{n}"))),
        DeviceSpec::Cuda(n) => Device::new_cuda(n).map_err(|e| DeviceError::Unavailable { ordinal: n, reason: e.to_string() }),
    }
}

/// `cpu (2 threads)`, `cuda:0`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        Device::Cuda(_) => match device.location() {
            candle::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            other => format!("{other:?}"),
        },
        other => format!("{:?}", other.location()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_cpu_builds_refuse_cuda() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!(matches!(select(DeviceSpec::Cpu), Ok(Device::Cpu)));
        if !CUDA_BUILT {
            assert!(matches!(select(DeviceSpec::Auto), Ok(Device::Cpu)));
            let err = select(DeviceSpec::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains("`cuda` feature"), "{err}");
        }
        assert!(describe(&Device::Cpu).starts_with("cpu"));
    }
}

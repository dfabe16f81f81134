//! The five capability sets of process.capabilities, through caps.
//!
//! Order matters: the bounding set is cut while init still has
//! CAP_SETPCAP, the user is switched with keep-caps on, and then the
//! effective, inheritable, permitted and ambient sets are set in that order
//! (each must stay a subset of the one the kernel checks it against).

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("capability {0}: not known to this kernel or to carte")]
    Unknown(String),
    #[error("set {set} capabilities: {reason}")]
    Set { set: &'static str, reason: String },
}

/// oci-spec's names ("AUDIT_WRITE") to caps' type.
fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet, CapabilityError> {
    let mut out = CapsHashSet::new();
    for cap in set.iter().flatten() {
        let name = format!("CAP_{cap}");
        let parsed: Capability = name
            .parse()
            .map_err(|_| CapabilityError::Unknown(name.clone()))?;
        out.insert(parsed);
    }
    Ok(out)
}

pub struct Sets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// Asked for, but not in this process's own bounding set (the kernel
    /// lacks them, or carte runs with fewer): they cannot be granted, so
    /// they are left out with a warning rather than failing (config.md,
    /// Linux Process).
    pub left_out: Vec<Capability>,
}

/// Resolves the config's sets up front, so an unknown name fails create
/// before anything is set up. A missing `capabilities` object means none.
pub fn resolve(caps: Option<&LinuxCapabilities>) -> Result<Sets, CapabilityError> {
    let c = match caps {
        Some(c) => c,
        None => {
            return Ok(Sets {
                bounding: CapsHashSet::new(),
                effective: CapsHashSet::new(),
                permitted: CapsHashSet::new(),
                inheritable: CapsHashSet::new(),
                ambient: CapsHashSet::new(),
                left_out: Vec::new(),
            })
        }
    };
    let held = caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::all());
    let mut left_out = CapsHashSet::new();
    let mut grantable = |set: CapsHashSet| -> CapsHashSet {
        let (keep, drop): (CapsHashSet, CapsHashSet) =
            set.into_iter().partition(|cap| held.contains(cap));
        left_out.extend(drop);
        keep
    };
    let sets = Sets {
        bounding: grantable(convert(c.bounding())?),
        effective: grantable(convert(c.effective())?),
        permitted: grantable(convert(c.permitted())?),
        inheritable: grantable(convert(c.inheritable())?),
        ambient: grantable(convert(c.ambient())?),
        left_out: Vec::new(),
    };
    let mut left_out: Vec<Capability> = left_out.into_iter().collect();
    left_out.sort_by_key(|c| c.index());
    Ok(Sets { left_out, ..sets })
}

fn set_err(set: &'static str) -> impl Fn(caps::errors::CapsError) -> CapabilityError {
    move |e| CapabilityError::Set {
        set,
        reason: e.to_string(),
    }
}

/// Cuts the bounding set; runs before the user switch.
pub fn drop_bounding(sets: &Sets) -> Result<(), CapabilityError> {
    for cap in caps::all() {
        if !sets.bounding.contains(&cap)
            && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            caps::drop(None, CapSet::Bounding, cap).map_err(set_err("bounding"))?;
        }
    }
    Ok(())
}

/// Sets the other four sets; runs after the user switch.
pub fn apply(sets: &Sets) -> Result<(), CapabilityError> {
    // Effective within the coming permitted set; inheritable while
    // permitted is still what keep-caps kept (the kernel takes a new
    // inheritable cap only from the old permitted or inheritable set, or
    // with CAP_SETPCAP effective), so an inheritable set wider than
    // permitted works, as with runc's single capset; permitted last.
    let effective = &sets.effective & &sets.permitted;
    caps::set(None, CapSet::Effective, &effective).map_err(set_err("effective"))?;
    caps::set(None, CapSet::Inheritable, &sets.inheritable).map_err(set_err("inheritable"))?;
    caps::set(None, CapSet::Permitted, &sets.permitted).map_err(set_err("permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(set_err("ambient"))?;
    for cap in &sets.ambient {
        // The kernel allows an ambient cap only if it is permitted and
        // inheritable; others are skipped, as runc does.
        if sets.permitted.contains(cap) && sets.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap).map_err(set_err("ambient"))?;
        }
    }
    Ok(())
}

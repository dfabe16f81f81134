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

/// This process's bounding set (41 prctl reads), read once: init, forked
/// from `create` after its own `resolve`, has the same one. Not so in a
/// user namespace, which gives init a full set: `resolve_fresh` reads it.
fn own_bounding_set() -> CapsHashSet {
    static HELD: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    HELD.get_or_init(read_bounding_set).clone()
}

fn read_bounding_set() -> CapsHashSet {
    caps::read(None, CapSet::Bounding).unwrap_or_else(|_| caps::all())
}

/// `resolve`, in a process whose bounding set may differ from the one
/// read first (init or an exec'd process in a user namespace).
pub fn resolve_fresh(caps: Option<&LinuxCapabilities>) -> Result<Sets, CapabilityError> {
    resolve_with(caps, read_bounding_set)
}

/// Resolves the config's sets up front, so an unknown name fails create
/// before anything is set up. A missing `capabilities` object means none.
pub fn resolve(caps: Option<&LinuxCapabilities>) -> Result<Sets, CapabilityError> {
    resolve_with(caps, own_bounding_set)
}

fn resolve_with(
    caps: Option<&LinuxCapabilities>,
    bounding_set: fn() -> CapsHashSet,
) -> Result<Sets, CapabilityError> {
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
    let held = bounding_set();
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

/// Cuts the bounding set; runs before the user switch. Each cap is
/// dropped without reading the set first (one prctl, not two): dropping
/// an absent cap succeeds. Only a refused drop is checked: refused is
/// fine for a cap the set lacks already, or one this kernel does not know.
pub fn drop_bounding(sets: &Sets) -> Result<(), CapabilityError> {
    for cap in caps::all() {
        if sets.bounding.contains(&cap) {
            continue;
        }
        if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
            if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                return Err(set_err("bounding")(e));
            }
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

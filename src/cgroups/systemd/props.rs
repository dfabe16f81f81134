//! The pure half of the systemd driver: cgroupsPath to slice and unit,
//! slice names to cgroup paths, linux.resources and
//! `org.systemd.property.*` annotations to unit properties, as runc does
//! (libcontainer/cgroups/systemd and specconv).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::dbus::Value;

/// The slice and unit prefix of an empty cgroupsPath: runc uses
/// `system.slice:runc:<id>`, crun `crun-<id>.scope`; each runtime names
/// its own scopes, so carte's are `carte-<id>.scope`.
pub const DEFAULT_SLICE: &str = "system.slice";
pub const DEFAULT_PREFIX: &str = "carte";

/// Where a container's scope goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub slice: String,
    /// `<prefix>-<name>.scope` (`<name>.scope` with an empty prefix).
    pub name: String,
}

impl Unit {
    /// From linux.cgroupsPath `slice:prefix:name` (runc's syntax under
    /// --systemd-cgroup); empty means `system.slice:carte:<id>`.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Unit, String> {
        let text = cgroups_path.unwrap_or_default();
        let (slice, prefix, name) = if text.is_empty() {
            (DEFAULT_SLICE, DEFAULT_PREFIX, id)
        } else {
            let parts: Vec<&str> = text.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(format!(
                    "{text:?} is not \"slice:prefix:name\", the form the systemd cgroup driver takes"
                ));
            };
            (slice, prefix, name)
        };
        let slice = if slice.is_empty() {
            DEFAULT_SLICE
        } else {
            slice
        };
        expand_slice(slice)?;
        if name.is_empty() {
            return Err(format!(
                "{text:?}: the name (after the second colon) is empty"
            ));
        }
        if name.ends_with(".slice") {
            return Err(format!(
                "{text:?}: carte makes a scope for each container, not a slice"
            ));
        }
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        check_unit_name(&unit)?;
        Ok(Unit {
            slice: slice.to_string(),
            name: unit,
        })
    }

    /// The scope's cgroup, below each hierarchy's root.
    pub fn cgroup_path(&self) -> String {
        let slice = expand_slice(&self.slice).expect("checked by parse");
        format!("{}/{}", slice.trim_end_matches('/'), self.name)
    }

    /// The unit back from a cgroup path this driver made.
    pub fn from_cgroup_path(path: &str) -> Unit {
        let mut parts = path.rsplit('/');
        let name = parts.next().unwrap_or_default().to_string();
        let slice = parts
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("-.slice")
            .to_string();
        Unit { slice, name }
    }
}

/// systemd's characters for unit names (unit-name.c: VALID_CHARS plus @).
fn check_unit_name(unit: &str) -> Result<(), String> {
    if unit.len() > 255 {
        return Err(format!("unit name {unit:?} is longer than 255 bytes"));
    }
    let bad = unit
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)));
    match bad {
        Some(c) => Err(format!("unit name {unit:?}: systemd does not allow {c:?}")),
        None => Ok(()),
    }
}

/// The cgroup path of a slice, as systemd nests them: `a-b-c.slice` lives
/// at /a.slice/a-b.slice/a-b-c.slice; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let bad = || format!("invalid slice name {slice:?}");
    let base = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if base.is_empty() || slice.contains('/') {
        return Err(bad());
    }
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push_str(&format!("/{prefix}{part}.slice"));
        prefix.push_str(&format!("{part}-"));
    }
    check_unit_name(slice)?;
    Ok(path)
}

/// systemd's "infinity" for byte and task counts.
const INFINITY: u64 = u64::MAX;
const DEFAULT_PERIOD: u64 = 100_000;

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// The unit properties of `r` on cgroup v2 (runc's
/// genV2ResourcesProperties, with IOWeight for the block IO weight):
/// only fields that are set. `current_memory` is the memory limit in force,
/// for a swap limit given without one (update).
pub fn v2_properties(
    r: &LinuxResources,
    current_memory: Option<i64>,
) -> Result<Vec<Value>, String> {
    let mut props = Vec::new();
    let prop = |props: &mut Vec<Value>, name: &str, v: Value| props.push(Value::property(name, v));
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            prop(&mut props, "MemoryMax", Value::U64(limit(l)));
        }
        if let Some(l) = m.reservation().filter(|l| *l != 0) {
            prop(&mut props, "MemoryLow", Value::U64(limit(l)));
        }
        if let Some(swap) = m.swap().filter(|s| *s != 0) {
            let memory = m.limit().or(current_memory).unwrap_or(0);
            let v = swap_v2(swap, memory)?;
            prop(&mut props, "MemorySwapMax", Value::U64(limit(v)));
        } else if m.limit() == Some(-1) {
            prop(&mut props, "MemorySwapMax", Value::U64(INFINITY));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            prop(
                &mut props,
                "CPUWeight",
                Value::U64(shares_to_weight(shares)),
            );
        }
        cpu_quota(&mut props, c.quota(), c.period());
        cpuset(&mut props, c.cpus().as_deref(), c.mems().as_deref())?;
    }
    tasks_max(&mut props, r);
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        prop(
            &mut props,
            "IOWeight",
            Value::U64(crate::cgroups::resources::io_weight(w)),
        );
    }
    unified(&mut props, r)?;
    Ok(props)
}

/// The unit properties of `r` on cgroup v1 (runc's genV1ResourcesProperties).
pub fn v1_properties(r: &LinuxResources) -> Result<Vec<Value>, String> {
    let mut props = Vec::new();
    if let Some(l) = r
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|l| *l != 0)
    {
        props.push(Value::property("MemoryLimit", Value::U64(limit(l))));
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            props.push(Value::property("CPUShares", Value::U64(shares)));
        }
        cpu_quota(&mut props, c.quota(), c.period());
        cpuset(&mut props, c.cpus().as_deref(), c.mems().as_deref())?;
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        props.push(Value::property("BlockIOWeight", Value::U64(u64::from(w))));
    }
    tasks_max(&mut props, r);
    Ok(props)
}

fn tasks_max(props: &mut Vec<Value>, r: &LinuxResources) {
    // 0 is "unchanged" for update and a real limit of 0 at create, which
    // only the file can say (systemd reads TasksMax=0 as no tasks, but
    // carte sets it once init exists); negative is no limit.
    if let Some(p) = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l != 0) {
        props.push(Value::property("TasksMax", Value::U64(limit(p))));
    }
}

/// v2's swap limit from OCI's memory+swap (runc's conversion).
pub fn swap_v2(swap: i64, memory: i64) -> Result<i64, String> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory <= 0 {
        return Err("memory.swap: a swap limit needs a memory limit".into());
    }
    if swap < memory {
        return Err(format!(
            "memory.swap: {swap} is below memory.limit {memory} (swap is memory+swap)"
        ));
    }
    Ok(swap - memory)
}

/// cpu.shares to cpu.weight, as cgroups-rs writes cpu.weight for the
/// cgroupfs driver, so that the unit and the file agree.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        s if s >= 262_144 => 10_000,
        s => 1 + (s - 2) * 9999 / 262_142,
    }
}

/// CPUQuotaPerSecUSec and CPUQuotaPeriodUSec (runc's addCpuQuota): the
/// quota per second, rounded up to systemd's 1% steps so the kernel gets
/// at least the quota asked for.
fn cpu_quota(props: &mut Vec<Value>, quota: Option<i64>, period: Option<u64>) {
    let period = period.filter(|p| *p != 0);
    let quota = quota.filter(|q| *q != 0);
    if let Some(p) = period {
        props.push(Value::property("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    if quota.is_none() && period.is_none() {
        return;
    }
    let mut per_sec = INFINITY;
    if let Some(q) = quota.filter(|q| *q > 0) {
        per_sec = (q as u64).saturating_mul(1_000_000) / period.unwrap_or(DEFAULT_PERIOD);
        if !per_sec.is_multiple_of(10_000) {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    props.push(Value::property("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

fn cpuset(props: &mut Vec<Value>, cpus: Option<&str>, mems: Option<&str>) -> Result<(), String> {
    for (name, list, field) in [
        ("AllowedCPUs", cpus, "cpu.cpus"),
        ("AllowedMemoryNodes", mems, "cpu.mems"),
    ] {
        if let Some(list) = list.filter(|l| !l.is_empty()) {
            let bits = range_to_bits(list).map_err(|e| format!("{field}: {e}"))?;
            props.push(Value::property(
                name,
                Value::Array("y".into(), bits.into_iter().map(Value::Byte).collect()),
            ));
        }
    }
    Ok(())
}

/// A cpuset list ("0-3,8") as systemd's bitmask: byte i bit j is CPU 8i+j.
pub fn range_to_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.trim().split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < 1 << 16)
                .ok_or_else(|| format!("{list:?} is not a CPU or node list"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("{list:?}: range {part} runs backwards"));
        }
        for n in lo..=hi {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    if bits.is_empty() {
        bits.push(0);
    }
    Ok(bits)
}

/// linux.resources.unified keys systemd has a property for (runc's
/// unifiedResToSystemdProps).
fn unified(props: &mut Vec<Value>, r: &LinuxResources) -> Result<(), String> {
    for (key, value) in r.unified().iter().flatten() {
        let name = match key.as_str() {
            "memory.min" => "MemoryMin",
            "memory.low" => "MemoryLow",
            "memory.high" => "MemoryHigh",
            "memory.max" => "MemoryMax",
            "memory.swap.max" => "MemorySwapMax",
            "pids.max" => "TasksMax",
            "cpu.weight" => "CPUWeight",
            _ => continue,
        };
        let v = match value.trim() {
            "max" => INFINITY,
            n => n
                .parse::<u64>()
                .map_err(|_| format!("unified.{key}: {value:?} is not a number or \"max\""))?,
        };
        props.push(Value::property(name, Value::U64(v)));
    }
    Ok(())
}

/// DevicePolicy and DeviceAllow for the rules, as runc's systemd device
/// properties: the rules are played in order (the last match decides, as
/// on v1), and what is allowed in the end is listed under the `strict`
/// policy. systemd has no deny list: a config that ends allowing all but
/// some devices becomes deny-all for systemd (with a warning, as runc),
/// while carte's own device program still lets through what is allowed.
pub fn device_properties(rules: &[LinuxDeviceCgroup]) -> (Vec<Value>, Option<String>) {
    let mut allow_all = false;
    // (type, major, minor, access) that are allowed (whitelist) or denied.
    let mut listed: Vec<(char, Option<i64>, Option<i64>, String)> = Vec::new();
    for rule in rules {
        let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            _ => 'c',
        };
        let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
        if typ == 'a' && rule.major().is_none() && rule.minor().is_none() {
            allow_all = rule.allow();
            listed.clear();
            continue;
        }
        let key = (typ, rule.major(), rule.minor());
        if rule.allow() != allow_all {
            match listed.iter_mut().find(|l| (l.0, l.1, l.2) == key) {
                Some(l) => {
                    for ch in access.chars() {
                        if !l.3.contains(ch) {
                            l.3.push(ch);
                        }
                    }
                }
                None => listed.push((typ, rule.major(), rule.minor(), access)),
            }
        } else {
            for l in listed.iter_mut().filter(|l| (l.0, l.1, l.2) == key) {
                l.3.retain(|ch| !access.contains(ch));
            }
            listed.retain(|l| !l.3.is_empty());
        }
    }
    let reset = Value::property("DeviceAllow", Value::Array("(ss)".into(), vec![]));
    if allow_all {
        if listed.is_empty() {
            return (
                vec![Value::property("DevicePolicy", Value::str("auto")), reset],
                None,
            );
        }
        return (
            vec![Value::property("DevicePolicy", Value::str("strict")), reset],
            Some("systemd has no device deny list: the unit denies every device (carte's own device program applies the rules)".into()),
        );
    }
    let mut entries = Vec::new();
    let mut warning = None;
    for (typ, major, minor, access) in listed {
        let group = if typ == 'b' { "block" } else { "char" };
        let path = match (major, minor) {
            (None, None) => format!("{group}-*"),
            (Some(ma), None) => format!("{group}-{ma}"),
            (Some(ma), Some(mi)) => format!("/dev/{group}/{ma}:{mi}"),
            (None, Some(_)) => {
                warning =
                    Some("systemd has no \"*:minor\" device rules: left out of the unit".into());
                continue;
            }
        };
        let path = if typ == 'a' {
            // An "a" rule with numbers: both kinds.
            entries.push(Value::Struct(vec![
                Value::str(&path.replace("char", "block")),
                Value::str(&access),
            ]));
            path
        } else {
            path
        };
        entries.push(Value::Struct(vec![Value::str(&path), Value::str(&access)]));
    }
    (
        vec![
            Value::property("DevicePolicy", Value::str("strict")),
            reset,
            Value::property("DeviceAllow", Value::Array("(ss)".into(), entries)),
        ],
        warning,
    )
}

/// `org.systemd.property.<Name>` annotations as unit properties, as runc
/// passes them: Name of ASCII letters only, the value in GVariant text
/// (true/false, numbers, 'strings', [arrays] of those, and typed numbers
/// such as `uint64 100`); `...Sec` with a lowercase letter before it
/// becomes `...USec`, the number times 1000000.
pub fn annotation_properties(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Result<Vec<Value>, String> {
    const PREFIX: &str = "org.systemd.property.";
    let mut keys: Vec<&String> = annotations
        .into_iter()
        .flat_map(|a| a.keys())
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut props = Vec::new();
    for key in keys {
        let value = &annotations.expect("has keys")[key];
        let mut name = key[PREFIX.len()..].to_string();
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "annotations.{key}: the property name must be 3 or more ASCII letters"
            ));
        }
        let mut v =
            parse_variant(value).map_err(|e| format!("annotations.{key}: {value:?}: {e}"))?;
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                v = Value::U64(seconds_to_usec(&v).map_err(|e| format!("annotations.{key}: {e}"))?);
                name = format!("{stem}USec");
            }
        }
        props.push(Value::property(&name, v));
    }
    Ok(props)
}

fn seconds_to_usec(v: &Value) -> Result<u64, String> {
    const M: u64 = 1_000_000;
    Ok(match v {
        Value::Byte(n) => u64::from(*n) * M,
        Value::I16(n) => (*n as u64).wrapping_mul(M),
        Value::U16(n) => u64::from(*n) * M,
        Value::I32(n) => (*n as u64).wrapping_mul(M),
        Value::U32(n) => u64::from(*n) * M,
        Value::I64(n) => (*n as u64).wrapping_mul(M),
        Value::U64(n) => n.wrapping_mul(M),
        Value::Double(d) => (d * M as f64) as u64,
        _ => return Err("a ...Sec property takes a number".into()),
    })
}

/// The GVariant text forms runc's parser (godbus ParseVariant) reads for
/// these annotations, the common subset: booleans, numbers (int32 unless
/// typed, double with a point), quoted strings, and arrays of one type.
pub fn parse_variant(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if text.starts_with('[') {
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or("an array without its closing bracket")?;
        let items: Vec<Value> = split_items(inner)?
            .iter()
            .map(|i| parse_variant(i))
            .collect::<Result<_, _>>()?;
        let sig = items.first().map(Value::signature).unwrap_or("s".into());
        if items.iter().any(|i| i.signature() != sig) {
            return Err("array items of different types".into());
        }
        return Ok(Value::Array(sig, items));
    }
    if let Some(q) = text.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let inner = text
            .strip_prefix(q)
            .and_then(|t| t.strip_suffix(q))
            .filter(|t| !t.contains(q))
            .ok_or("a string without its closing quote")?;
        return Ok(Value::str(inner));
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let (ty, num) = match text.split_once(' ') {
        Some((ty, num)) => (Some(ty), num.trim()),
        None => (None, text),
    };
    let bad =
        || "unsupported value (carte reads booleans, numbers, 'strings' and arrays)".to_string();
    let int = |n: &str| n.parse::<i128>().map_err(|_| bad());
    Ok(match ty {
        None if num.contains('.') => Value::Double(num.parse().map_err(|_| bad())?),
        None => {
            let n = int(num)?;
            match i32::try_from(n) {
                Ok(n) => Value::I32(n),
                Err(_) => Value::I64(i64::try_from(n).map_err(|_| bad())?),
            }
        }
        Some("byte" | "@y") => Value::Byte(u8::try_from(int(num)?).map_err(|_| bad())?),
        Some("int16" | "@n") => Value::I16(i16::try_from(int(num)?).map_err(|_| bad())?),
        Some("uint16" | "@q") => Value::U16(u16::try_from(int(num)?).map_err(|_| bad())?),
        Some("int32" | "@i") => Value::I32(i32::try_from(int(num)?).map_err(|_| bad())?),
        Some("uint32" | "@u") => Value::U32(u32::try_from(int(num)?).map_err(|_| bad())?),
        Some("int64" | "@x") => Value::I64(i64::try_from(int(num)?).map_err(|_| bad())?),
        Some("uint64" | "@t") => Value::U64(u64::try_from(int(num)?).map_err(|_| bad())?),
        Some("double" | "@d") => Value::Double(num.parse().map_err(|_| bad())?),
        Some(_) => return Err(bad()),
    })
}

/// The items of an array's inside, split at commas outside quotes.
fn split_items(inner: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in inner.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c)
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c)
            }
            (None, ',') => items.push(std::mem::take(&mut cur)),
            (None, '[') => return Err("nested arrays are not supported".into()),
            _ => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("a string without its closing quote".into());
    }
    if !cur.trim().is_empty() || !items.is_empty() {
        items.push(cur);
    }
    Ok(items.into_iter().map(|s| s.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn names(props: &[Value]) -> Vec<(String, Value)> {
        props
            .iter()
            .map(|p| match p {
                Value::Struct(f) => match (&f[0], &f[1]) {
                    (Value::Str(n), Value::Variant(v)) => (n.clone(), (**v).clone()),
                    _ => panic!("{p:?}"),
                },
                _ => panic!("{p:?}"),
            })
            .collect()
    }

    #[test]
    fn cgroups_paths_become_units() {
        let u = Unit::parse(Some("machine.slice:libpod:abc"), "x").unwrap();
        assert_eq!(u.name, "libpod-abc.scope");
        assert_eq!(u.cgroup_path(), "/machine.slice/libpod-abc.scope");
        let u = Unit::parse(
            Some("kubepods-besteffort-pod12.slice:cri-containerd:f00"),
            "x",
        )
        .unwrap();
        assert_eq!(
            u.cgroup_path(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-f00.scope"
        );
        assert_eq!(Unit::from_cgroup_path(&u.cgroup_path()), u);
        let u = Unit::parse(None, "c1").unwrap();
        assert_eq!(u.cgroup_path(), "/system.slice/carte-c1.scope");
        assert_eq!(
            Unit::parse(Some(":p:n"), "x").unwrap().slice,
            "system.slice"
        );
        assert_eq!(
            Unit::parse(Some("-.slice::n"), "x").unwrap().cgroup_path(),
            "/n.scope"
        );
        assert_eq!(Unit::from_cgroup_path("/n.scope").slice, "-.slice");
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "nosuffix:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "system.slice:p:",
            "system.slice:p:x.slice",
            "system.slice:p:a b",
            "system.slice:p/q:n",
        ] {
            assert!(Unit::parse(Some(bad), "x").is_err(), "{bad}");
        }
        assert!(
            Unit::parse(None, "a+b").is_err(),
            "'+' is no unit character"
        );
    }

    #[test]
    fn slices_expand_as_systemd_nests_them() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        for bad in [".slice", "a", "a-.slice", "a/b.slice", "--.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v2_resources_become_properties() {
        let r = res(serde_json::json!({
            "memory": {"limit": 268435456, "reservation": 1048576, "swap": 536870912},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
            "pids": {"limit": 64},
            "blockIO": {"weight": 500},
            "unified": {"memory.high": "max", "io.max": "8:0 rbps=1"}
        }));
        let p = names(&v2_properties(&r, None).unwrap());
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(268435456)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(1048576)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(268435456)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100000)));
        assert_eq!(
            get("AllowedCPUs"),
            Some(Value::Array("y".into(), vec![Value::Byte(0b1011)]))
        );
        assert_eq!(get("TasksMax"), Some(Value::U64(64)));
        assert_eq!(get("IOWeight"), Some(Value::U64(4950)));
        assert_eq!(get("MemoryHigh"), Some(Value::U64(u64::MAX)));
        let unlimited = res(serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": -1}}));
        let p = names(&v2_properties(&unlimited, None).unwrap());
        assert!(p.contains(&("MemoryMax".into(), Value::U64(u64::MAX))));
        assert!(p.contains(&("MemorySwapMax".into(), Value::U64(u64::MAX))));
        assert!(p.contains(&("TasksMax".into(), Value::U64(u64::MAX))));
        // An update with only swap: against the limit in force.
        let swap = res(serde_json::json!({"memory": {"swap": 300}}));
        let p = names(&v2_properties(&swap, Some(100)).unwrap());
        assert_eq!(p, vec![("MemorySwapMax".into(), Value::U64(200))]);
        assert!(v2_properties(&swap, Some(400)).is_err());
        assert!(v2_properties(&swap, None).is_err());
    }

    #[test]
    fn cpu_quota_rounds_up_to_whole_percents() {
        let mut p = Vec::new();
        cpu_quota(&mut p, Some(12345), Some(100000));
        assert_eq!(
            names(&p),
            vec![
                ("CPUQuotaPeriodUSec".into(), Value::U64(100000)),
                ("CPUQuotaPerSecUSec".into(), Value::U64(130000))
            ]
        );
        let mut p = Vec::new();
        cpu_quota(&mut p, Some(-1), None);
        assert_eq!(
            names(&p),
            vec![("CPUQuotaPerSecUSec".into(), Value::U64(u64::MAX))]
        );
        let mut p = Vec::new();
        cpu_quota(&mut p, None, None);
        assert!(p.is_empty());
    }

    #[test]
    fn cpu_lists_as_bitmasks() {
        assert_eq!(range_to_bits("0").unwrap(), vec![1]);
        assert_eq!(range_to_bits("0-7,9").unwrap(), vec![0xff, 0x02]);
        assert_eq!(range_to_bits("12").unwrap(), vec![0, 0x10]);
        assert!(range_to_bits("3-1").is_err());
        assert!(range_to_bits("x").is_err());
    }

    #[test]
    fn shares_convert_as_the_files_do() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let rule =
            |v: serde_json::Value| -> LinuxDeviceCgroup { serde_json::from_value(v).unwrap() };
        let rules = vec![
            rule(serde_json::json!({"allow": false, "access": "rwm"})),
            rule(serde_json::json!({"allow": true, "type": "c", "access": "m"})),
            rule(
                serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
            ),
            rule(serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})),
            rule(
                serde_json::json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}),
            ),
            rule(
                serde_json::json!({"allow": false, "type": "b", "major": 8, "minor": 0, "access": "r"}),
            ),
        ];
        let (props, warning) = device_properties(&rules);
        assert!(warning.is_none());
        let p = names(&props);
        assert_eq!(p[0], ("DevicePolicy".into(), Value::str("strict")));
        assert_eq!(
            p[1],
            ("DeviceAllow".into(), Value::Array("(ss)".into(), vec![]))
        );
        let entry = |a: &str, b: &str| Value::Struct(vec![Value::str(a), Value::str(b)]);
        assert_eq!(
            p[2].1,
            Value::Array(
                "(ss)".into(),
                vec![
                    entry("char-*", "m"),
                    entry("/dev/char/1:3", "rwm"),
                    entry("char-136", "rwm")
                ]
            )
        );
        let all = vec![rule(serde_json::json!({"allow": true, "access": "rwm"}))];
        let p = names(&device_properties(&all).0);
        assert_eq!(p[0], ("DevicePolicy".into(), Value::str("auto")));
        let deny_some = vec![
            rule(serde_json::json!({"allow": true, "access": "rwm"})),
            rule(
                serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
            ),
        ];
        assert!(device_properties(&deny_some).1.is_some());
    }

    #[test]
    fn annotations_as_runc_reads_them() {
        let a: std::collections::HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "10"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.MemoryHigh", "uint64 1048576"),
            ("org.systemd.property.Wants", "['a.service', 'b.service']"),
            ("other", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = names(&annotation_properties(Some(&a)).unwrap());
        assert_eq!(
            p,
            vec![
                ("CollectMode".into(), Value::str("inactive-or-failed")),
                ("MemoryHigh".into(), Value::U64(1048576)),
                ("TimeoutStopUSec".into(), Value::U64(10_000_000)),
                (
                    "Wants".into(),
                    Value::Array(
                        "s".into(),
                        vec![Value::str("a.service"), Value::str("b.service")]
                    )
                ),
            ]
        );
        for (k, v) in [
            ("org.systemd.property.A1b", "1"),
            ("org.systemd.property.Ab", "1"),
            ("org.systemd.property.Foo", "{'a': 1}"),
            ("org.systemd.property.Foo", "'open"),
            ("org.systemd.property.TimeoutSec", "'x'"),
        ] {
            let one = [(k.to_string(), v.to_string())].into_iter().collect();
            assert!(annotation_properties(Some(&one)).is_err(), "{k}={v}");
        }
        assert_eq!(parse_variant("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_variant("1.5").unwrap(), Value::Double(1.5));
        assert_eq!(
            parse_variant("5000000000").unwrap(),
            Value::I64(5_000_000_000)
        );
        assert_eq!(parse_variant("@t 5").unwrap(), Value::U64(5));
    }
}

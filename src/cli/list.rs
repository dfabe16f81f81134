use std::path::Path;
use std::process::ExitCode;

use super::ListFormat;
use crate::container::Container;

pub fn run(root: &Path, format: ListFormat, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut ids: Vec<String> = match std::fs::read_dir(root) {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => anyhow::bail!("read {}: {}", root.display(), crate::sys::reason(&e)),
    };
    ids.sort();
    // A dir that is not (or no longer) a container is skipped, as runc does.
    let containers: Vec<Container> = ids
        .iter()
        .filter_map(|id| Container::load(root, id).ok())
        .collect();
    if quiet {
        for c in &containers {
            super::output(&format!("{}\n", c.id()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // runc shows the name of the state dir's owner (`#uid` without one).
    let owners: Vec<String> = containers
        .iter()
        .map(|c| owner_of(&root.join(c.id())))
        .collect();
    let states = containers.iter().zip(&owners).map(|(c, owner)| {
        let mut s = c.oci_state();
        s.owner = std::borrow::Cow::Borrowed(owner);
        s
    });
    match format {
        ListFormat::Json => {
            let states: Vec<_> = states.collect();
            super::output(&format!("{}\n", serde_json::to_string(&states)?));
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = states
                .map(|s| {
                    [
                        s.id.to_string(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.to_string(),
                        s.owner.into_owned(),
                    ]
                })
                .collect();
            super::output(&table(
                &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                &rows,
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The user name of `dir`'s owner in the host's /etc/passwd, or `#uid`.
fn owner_of(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse() == Ok(uid)).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Columns padded to their widest cell plus one space, like runc's tabwriter.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}", width = w + 3));
            }
        }
        out + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_columns() {
        let t = super::table(&["ID", "PID"], &[["abc".into(), "1".into()]]);
        assert_eq!(t, "ID    PID\nabc   1\n");
    }
}

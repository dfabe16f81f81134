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
    match format {
        ListFormat::Json => {
            let states: Vec<serde_json::Value> = containers.iter().map(|c| c.oci_state()).collect();
            super::output(&format!("{}\n", serde_json::Value::Array(states)));
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|c| {
                    let s = c.oci_state();
                    let text = |k: &str| {
                        s[k].as_str()
                            .map(String::from)
                            .unwrap_or_else(|| s[k].to_string())
                    };
                    [
                        text("id"),
                        text("pid"),
                        text("status"),
                        text("bundle"),
                        text("created"),
                        text("owner"),
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

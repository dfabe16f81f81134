//! Shared by the fuzz targets.

/// Warnings (an SELinux label on a host without SELinux, ...) would go to
/// stderr on every run; send them to /dev/null instead.
pub fn quiet_logging() {
    let _ = carte::logging::init(
        Some(std::path::Path::new("/dev/null")),
        carte::logging::Format::Text,
        false,
    );
}

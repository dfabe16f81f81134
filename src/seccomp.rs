//! OCI seccomp profiles. Config validation refuses linux.seccomp until
//! profiles are compiled here (through seccompiler), so a profile is never
//! silently dropped.

// The errno texts the trampoline can report, worded as carte words them
// (nix's Errno::desc, lowercased; a unit test in cloned_binary.rs checks
// that). Included by the trampoline and by carte's tests.
const REASONS: &[(i32, &str)] = &[
    (1, "operation not permitted"),
    (2, "no such file or directory"),
    (5, "i/o error"),
    (7, "argument list too long"),
    (8, "exec format error"),
    (9, "bad file number"),
    (11, "try again"),
    (12, "out of memory"),
    (13, "permission denied"),
    (14, "bad address"),
    (20, "not a directory"),
    (21, "is a directory"),
    (22, "invalid argument"),
    (23, "file table overflow"),
    (24, "too many open files"),
    (26, "text file busy"),
    (36, "file name too long"),
    (38, "function not implemented"),
    (40, "too many symbolic links encountered"),
    (80, "accessing a corrupted shared library"),
];

//! TAP output: one line per check, the plan at the end.

use std::fmt::Debug;

#[derive(Default)]
pub struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    /// One check: `ok` or `not ok` with `why` as a diagnostic.
    pub fn check(&mut self, desc: &str, ok: bool, why: impl std::fmt::Display) {
        self.n += 1;
        if ok {
            println!("ok {} - {desc}", self.n);
        } else {
            self.failed += 1;
            println!("not ok {} - {desc}\n# {why}", self.n);
        }
    }

    /// A check that the value seen equals the value config.json asks for.
    pub fn eq<T: PartialEq + Debug>(&mut self, desc: &str, got: T, want: T) {
        let ok = got == want;
        self.check(desc, ok, format!("got {got:?}, want {want:?}"));
    }

    pub fn skip(&mut self, desc: &str, why: &str) {
        self.n += 1;
        println!("ok {} - {desc} # SKIP {why}", self.n);
    }

    /// Prints the plan; true when nothing failed.
    pub fn finish(self) -> bool {
        println!("1..{}", self.n);
        self.failed == 0
    }
}

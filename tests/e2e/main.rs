//! End-to-end tests: the real binary against real local HTTP servers and a real SQLite file.
//! One test binary with modules, so the suite links once.

mod daemon;
mod fetch;
mod manage;
mod pipeline;
mod politeness;
mod support;
mod systemd;

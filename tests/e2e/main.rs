//! End-to-end tests: the real binary against real local HTTP servers and a real SQLite file.
//! One test binary with modules, so the suite links once.

mod daemon;
mod digest;
mod fetch;
mod manage;
mod matcher;
mod pipeline;
mod politeness;
mod smtp_server;
mod stories;
mod support;
mod systemd;
mod web;

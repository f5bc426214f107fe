//! Digest

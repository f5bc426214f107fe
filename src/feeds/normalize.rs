//! Making untrusted feed text and links plain and safe.

//! Embedded durable nonce journal (in progress).

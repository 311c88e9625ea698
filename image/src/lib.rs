//! rt-image: rt's image tool as a library. A content-addressed store of
//! blobs and unpacked layers ([`store`], collected by [`gc`]), registry pulls ([`pull`]),
//! imports of OCI layouts and docker archives ([`import`]), pushes
//! ([`push`], credentials checked by [`login`], names by [`tag`]), and bundles
//! for `rt` made from stored images ([`bundle`]), and their containers'
//! networks through the standard CNI plugins ([`network`], [`cni`],
//! [`netns`]). `src/bin/rt-image.rs` is
//! a thin command line over it. Network code lives here, never in `rt`.

// The library returns errors and reports progress through callbacks;
// only the binary prints or exits.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

pub mod auth;
pub mod bundle;
pub mod cni;
pub mod commit;
pub mod digest;
pub mod error;
pub mod gc;
pub mod image;
pub mod import;
pub mod login;
pub mod netns;
pub mod network;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod runtime_config;
pub mod store;
pub mod tag;
mod txn;
pub mod unpack;
pub mod user;
pub mod userns;

pub use error::{Error, Result};

//! How results are shown: one module per output format. Reports only read a
//! finished [`Report`](crate::results::Report).

pub mod human;
pub mod json;

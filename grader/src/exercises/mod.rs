//! What is checked: one module per exercise, each reading like the
//! lecture's test plan for that slide set; what several of them share
//! (idleness, time bounds, reaping, diagnostics, test data) is in
//! `support`.

use crate::check::Exercise;

pub mod framing;
pub mod pipeline;
pub mod select;
pub mod shm;
pub mod signals;
pub mod sockets;
pub mod udp;

mod support;

/// Every exercise, in course order.
pub fn all() -> Vec<Exercise> {
    vec![
        signals::exercise(),
        shm::exercise(),
        framing::exercise(),
        pipeline::exercise(),
        sockets::exercise(),
        select::exercise(),
        udp::exercise(),
    ]
}

//! What is checked: one module per exercise, each reading like the
//! lecture's test plan for that slide set.

use crate::check::Exercise;

pub mod framing;
pub mod pipeline;
pub mod select;
pub mod shm;
pub mod signals;
pub mod sockets;
pub mod udp;

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

//! One file per state kind: how a state of that kind runs once entered, and how it answers the
//! events addressed to it. Each is a set of methods of the transition in progress
//! ([`super::transition::Tx`]): pure functions of the state, the frame and the event to the
//! frame's new position and the history events, with no clock, I/O or randomness of their own.

mod choice;
mod fail;
mod fork;
mod map;
mod parallel;
mod pass;
mod succeed;
mod task;
mod wait;

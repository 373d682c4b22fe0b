//! Domain types that cross function boundaries: the messages one function sends and another
//! receives. They know nothing of HTTP, envelopes or storage.

pub mod messages;

//! Model discovery as compiled (`[discovery]`): which backends the filter asks for their own
//! models, how often, and how long their models outlive a backend that stopped answering.

/// Model discovery (`[discovery]`): the filter's timer asks each backend in [`Self::backends`]
/// for its models (`GET {prefix}/models`), and `/v1/models` lists those a pattern model serves.
/// Durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Between two fetches of one backend's list (each wait jittered by up to a tenth).
    pub interval_ms: u64,
    /// Deadline of one fetch.
    pub timeout_ms: u64,
    /// How long after its last successful fetch a backend's models stay listed.
    pub grace_ms: u64,
    /// Most models kept per backend.
    pub max_models: usize,
    /// The backends asked, as indices into [`Plan::backends`](super::Plan::backends), each
    /// once, in order: every target of a pattern model that passes the client's name through,
    /// on a backend whose kind lists models the filter can read, with a key of the router's own
    /// or none (never a client's: a backend that takes the client's key is not asked).
    pub backends: Vec<usize>,
}

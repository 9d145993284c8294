/// The bulkhead was full: the call was rejected before reaching the callee.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bulkhead {bulkhead} is full ({limit} calls in flight)")]
pub struct BulkheadFull {
    pub bulkhead: String,
    pub limit: usize,
}

/// Cache settings that parsed but cannot work.
#[derive(Debug, thiserror::Error)]
pub enum InvalidCache {
    #[error("cache.routes.{route}: not a cacheable route (cacheable: {cacheable})")]
    UnknownRoute { route: String, cacheable: String },
    #[error("cache.max_entries and cache.max_bytes must be positive while the cache is enabled")]
    NoRoom,
    #[error(
        "cache.max_bytes / cache.max_entries must be at most {max} bytes (the weight of one entry)"
    )]
    EntryTooLarge { max: u32 },
}

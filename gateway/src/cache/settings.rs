use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::InvalidCache;

/// The micro-cache (`crate::cache`): on or off, its memory bound, and the
/// routes it answers with their policies.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MicroCacheSettings {
    /// Off: every request reaches the handlers, as if the layer were absent.
    pub enabled: bool,
    /// Most copies held.
    pub max_entries: u64,
    /// Most bytes of copies held (bodies, keys and headers).
    pub max_bytes: u64,
    /// Policies by route template (`/api/v1/articles/{id}`); a GET route
    /// not listed is never cached.
    pub routes: BTreeMap<String, RoutePolicy>,
}

/// How one route is cached. Seconds are whole in `Cache-Control`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutePolicy {
    /// How long a copy is fresh (answered without asking the backend).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// After the TTL, how long the old copy is still answered while one
    /// refresh runs in the background.
    #[serde(with = "humantime_serde")]
    pub stale_while_revalidate: Duration,
    /// After the TTL, how long the old copy may stand in for a failed load.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// The query parameters that choose the answer (the key); others are
    /// left out of the key (the handlers ignore them).
    pub query: Vec<String>,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(1),
            stale_while_revalidate: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(300),
            query: Vec::new(),
        }
    }
}

impl Default for MicroCacheSettings {
    fn default() -> Self {
        let list = RoutePolicy {
            query: vec!["limit".into(), "cursor".into()],
            ..RoutePolicy::default()
        };
        Self {
            enabled: true,
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            routes: BTreeMap::from([
                ("/api/v1/articles".into(), list.clone()),
                ("/api/v1/articles/{id}".into(), RoutePolicy::default()),
                ("/api/v1/articles/{id}/comments".into(), list),
            ]),
        }
    }
}

impl MicroCacheSettings {
    /// Refuses routes that are not in `cacheable` (a typo would silently
    /// cache nothing) and bounds that leave no room.
    pub fn validate(&self, cacheable: &[&str]) -> Result<(), InvalidCache> {
        for route in self.routes.keys() {
            if !cacheable.contains(&route.as_str()) {
                return Err(InvalidCache::UnknownRoute {
                    route: route.clone(),
                    cacheable: cacheable.join(", "),
                });
            }
        }
        if !self.enabled {
            return Ok(());
        }
        if self.max_entries == 0 || self.max_bytes == 0 {
            return Err(InvalidCache::NoRoom);
        }
        if self.max_bytes / self.max_entries > u64::from(u32::MAX) {
            return Err(InvalidCache::EntryTooLarge { max: u32::MAX });
        }
        Ok(())
    }
}

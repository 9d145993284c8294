//! A five-minute window of registry samples, one a second, and what the
//! dashboard shows from it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use kit::metrics::names;
use serde::Serialize;

use super::exposition::{self, Sample};
use crate::routes::PROBES;

/// Frames kept: five minutes at one a second, plus the frame before.
pub const WINDOW: usize = 301;
/// Seconds the "now" rates (QPS per API) are averaged over.
const RECENT: usize = 10;
/// APIs listed.
const TOP: usize = 10;

type Key2 = (String, String);
type Key3 = (String, String, String);

/// What the registry said at one moment.
#[derive(Debug, Default)]
pub struct Frame {
    at_ms: u64,
    /// (route, method, status) → requests so far.
    requests: HashMap<Key3, f64>,
    /// (route, method) → cumulative (le, count) buckets, ascending.
    buckets: HashMap<Key2, Vec<(f64, f64)>>,
    /// breaker → 0 closed, 1 open, 2 half-open.
    breaker_state: BTreeMap<String, f64>,
    /// (breaker, outcome) → calls so far.
    breaker_calls: HashMap<Key2, f64>,
    /// (route, outcome) → micro-cache answers so far.
    cache_requests: HashMap<Key2, f64>,
    /// route → background refreshes so far.
    cache_refreshes: HashMap<String, f64>,
    /// route → copies evicted so far (every cause).
    cache_evictions: HashMap<String, f64>,
    /// route → bytes held now.
    cache_bytes: BTreeMap<String, f64>,
}

impl Frame {
    pub fn from_exposition(text: &str, at_ms: u64) -> Self {
        let mut frame = Frame {
            at_ms,
            ..Frame::default()
        };
        for sample in exposition::parse(text) {
            frame.add(sample);
        }
        for buckets in frame.buckets.values_mut() {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        frame
    }

    fn add(&mut self, s: Sample) {
        let label = |k: &str| s.label(k).unwrap_or("").to_owned();
        // Probes stay in /metrics under their own route, but they are not
        // API traffic: a load balancer's polls would swamp the QPS and the
        // start-up 503s of /readyz would read as API errors.
        if s.label("route")
            .is_some_and(|route| PROBES.contains(&route))
        {
            return;
        }
        let name = s.name.as_str();
        let counter = |family: &str| name.strip_suffix("_total") == Some(family);
        if counter(names::HTTP_SERVER_REQUESTS) {
            self.requests
                .insert((label("route"), label("method"), label("status")), s.value);
        } else if name.strip_suffix("_bucket") == Some(names::HTTP_SERVER_REQUEST_DURATION) {
            let le = match s.label("le") {
                Some("+Inf") => f64::INFINITY,
                Some(le) => match le.parse() {
                    Ok(le) => le,
                    Err(_) => return,
                },
                None => return,
            };
            self.buckets
                .entry((label("route"), label("method")))
                .or_default()
                .push((le, s.value));
        } else if name == names::BREAKER_STATE {
            self.breaker_state.insert(label("breaker"), s.value);
        } else if counter(names::BREAKER_CALLS) {
            self.breaker_calls
                .insert((label("breaker"), label("outcome")), s.value);
        } else if counter(names::HTTP_CACHE_REQUESTS) {
            self.cache_requests
                .insert((label("route"), label("outcome")), s.value);
        } else if counter(names::HTTP_CACHE_REFRESHES) {
            *self.cache_refreshes.entry(label("route")).or_default() += s.value;
        } else if counter(names::HTTP_CACHE_EVICTIONS) {
            *self.cache_evictions.entry(label("route")).or_default() += s.value;
        } else if name == names::HTTP_CACHE_BYTES {
            self.cache_bytes.insert(label("route"), s.value);
        }
    }

    fn total_requests(&self) -> f64 {
        self.requests.values().sum()
    }
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub seq: u64,
    pub at_ms: u64,
    pub window_seconds: u64,
    /// Requests per second, one point per second, oldest first.
    pub qps_series: Vec<f64>,
    /// Requests per second over the last ten seconds.
    pub qps: f64,
    /// Requests in the window.
    pub requests: f64,
    /// The busiest APIs now.
    pub apis: Vec<ApiStats>,
    pub statuses: Vec<StatusCount>,
    pub breakers: Vec<BreakerStats>,
    pub services: Vec<ServiceInstances>,
    /// Share of cacheable answers served without a load of their own, over
    /// the window (`None` before any).
    pub cache_hit_ratio: Option<f64>,
    /// The micro-cache per route.
    pub cache: Vec<CacheStats>,
}

#[derive(Debug, Serialize)]
pub struct CacheStats {
    pub route: String,
    /// (hit + coalesced + stale + stale_if_error) / (those + miss) over the
    /// window; requests with `Authorization` (bypass) are not counted.
    pub hit_ratio: Option<f64>,
    pub hits: f64,
    pub misses: f64,
    /// Stale copies served (while revalidating or standing in for errors).
    pub stale: f64,
    pub bypass: f64,
    pub refreshes: f64,
    pub evictions: f64,
    /// Held now.
    pub bytes: f64,
}

#[derive(Debug, Serialize)]
pub struct ApiStats {
    pub method: String,
    pub route: String,
    pub qps: f64,
    pub requests: f64,
    /// 98th percentile latency over the window, interpolated within the
    /// histogram bucket like Prometheus' `histogram_quantile`.
    pub p98_ms: Option<f64>,
    /// Share of 5xx answers over the window.
    pub error_ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct StatusCount {
    pub status: String,
    pub count: f64,
}

#[derive(Debug, Serialize)]
pub struct BreakerStats {
    pub name: String,
    pub state: &'static str,
    /// Failures and timeouts over calls that reached the backend, in the window.
    pub error_rate: f64,
    pub calls: f64,
    pub short_circuited: f64,
}

#[derive(Debug, Serialize)]
pub struct ServiceInstances {
    pub service: String,
    pub instances: Vec<String>,
}

/// The frames of the last five minutes.
#[derive(Debug, Default)]
pub struct Window {
    frames: VecDeque<Frame>,
    seq: u64,
}

impl Window {
    pub fn push(&mut self, frame: Frame) {
        if self.frames.len() == WINDOW {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
        self.seq += 1;
    }

    pub fn snapshot(&self, services: Vec<ServiceInstances>) -> Snapshot {
        let empty = Frame::default();
        let newest = self.frames.back().unwrap_or(&empty);
        let oldest = self.frames.front().unwrap_or(&empty);
        let recent = self
            .frames
            .get(self.frames.len().saturating_sub(RECENT + 1))
            .unwrap_or(oldest);

        let qps_series = self
            .frames
            .iter()
            .zip(self.frames.iter().skip(1))
            .map(|(a, b)| rate(b.total_requests() - a.total_requests(), a, b))
            .collect();

        let mut per_api: BTreeMap<Key2, (f64, f64, f64)> = BTreeMap::new();
        for ((route, method, status), now) in &newest.requests {
            let key = (route.clone(), method.clone(), status.clone());
            let in_window = now - oldest.requests.get(&key).unwrap_or(&0.0);
            let lately = now - recent.requests.get(&key).unwrap_or(&0.0);
            let entry = per_api.entry((route.clone(), method.clone())).or_default();
            entry.0 += in_window;
            entry.1 += lately;
            if status.starts_with('5') {
                entry.2 += in_window;
            }
        }
        let mut apis: Vec<ApiStats> = per_api
            .into_iter()
            .map(|((route, method), (requests, lately, errors))| {
                let p98_ms = newest
                    .buckets
                    .get(&(route.clone(), method.clone()))
                    .and_then(|now| {
                        let before = oldest.buckets.get(&(route.clone(), method.clone()));
                        quantile(0.98, now, before)
                    })
                    .map(|seconds| seconds * 1000.0);
                ApiStats {
                    qps: rate(lately, recent, newest),
                    error_ratio: if requests > 0.0 {
                        errors / requests
                    } else {
                        0.0
                    },
                    method,
                    route,
                    requests,
                    p98_ms,
                }
            })
            .collect();
        apis.sort_by(|a, b| {
            b.qps
                .total_cmp(&a.qps)
                .then(b.requests.total_cmp(&a.requests))
        });
        apis.truncate(TOP);

        let mut statuses: BTreeMap<String, f64> = BTreeMap::new();
        for (key, now) in &newest.requests {
            let delta = now - oldest.requests.get(key).unwrap_or(&0.0);
            *statuses.entry(key.2.clone()).or_default() += delta;
        }

        let breakers = newest
            .breaker_state
            .iter()
            .map(|(name, state)| {
                let calls = |outcome: &str| {
                    let key = (name.clone(), outcome.to_owned());
                    newest.breaker_calls.get(&key).unwrap_or(&0.0)
                        - oldest.breaker_calls.get(&key).unwrap_or(&0.0)
                };
                let failed = calls("failure") + calls("timeout");
                let reached = failed + calls("success");
                BreakerStats {
                    name: name.clone(),
                    state: match *state as i64 {
                        0 => "closed",
                        1 => "open",
                        2 => "half-open",
                        _ => "unknown",
                    },
                    error_rate: if reached > 0.0 { failed / reached } else { 0.0 },
                    calls: reached + calls("rejected") + calls("short_circuited"),
                    short_circuited: calls("short_circuited"),
                }
            })
            .collect();

        let mut per_route: BTreeMap<String, CacheStats> = BTreeMap::new();
        for ((route, outcome), now) in &newest.cache_requests {
            let key = (route.clone(), outcome.clone());
            let delta = now - oldest.cache_requests.get(&key).unwrap_or(&0.0);
            let stats = per_route
                .entry(route.clone())
                .or_insert_with(|| CacheStats {
                    route: route.clone(),
                    hit_ratio: None,
                    hits: 0.0,
                    misses: 0.0,
                    stale: 0.0,
                    bypass: 0.0,
                    refreshes: newest.cache_refreshes.get(route).unwrap_or(&0.0)
                        - oldest.cache_refreshes.get(route).unwrap_or(&0.0),
                    evictions: newest.cache_evictions.get(route).unwrap_or(&0.0)
                        - oldest.cache_evictions.get(route).unwrap_or(&0.0),
                    bytes: newest.cache_bytes.get(route).copied().unwrap_or(0.0),
                });
            match outcome.as_str() {
                "hit" | "coalesced" => stats.hits += delta,
                "stale" | "stale_if_error" => stats.stale += delta,
                "miss" => stats.misses += delta,
                "bypass" => stats.bypass += delta,
                _ => {}
            }
        }
        let (mut cached, mut looked_up) = (0.0, 0.0);
        for stats in per_route.values_mut() {
            let from_cache = stats.hits + stats.stale;
            let total = from_cache + stats.misses;
            stats.hit_ratio = (total > 0.0).then(|| from_cache / total);
            cached += from_cache;
            looked_up += total;
        }

        Snapshot {
            seq: self.seq,
            at_ms: newest.at_ms,
            window_seconds: newest.at_ms.saturating_sub(oldest.at_ms) / 1000,
            qps_series,
            qps: rate(
                newest.total_requests() - recent.total_requests(),
                recent,
                newest,
            ),
            requests: newest.total_requests() - oldest.total_requests(),
            apis,
            statuses: statuses
                .into_iter()
                .filter(|(_, count)| *count > 0.0)
                .map(|(status, count)| StatusCount { status, count })
                .collect(),
            breakers,
            services,
            cache_hit_ratio: (looked_up > 0.0).then(|| cached / looked_up),
            cache: per_route.into_values().collect(),
        }
    }
}

fn rate(delta: f64, from: &Frame, to: &Frame) -> f64 {
    let seconds = to.at_ms.saturating_sub(from.at_ms) as f64 / 1000.0;
    if seconds > 0.0 { delta / seconds } else { 0.0 }
}

/// The `q` quantile of the observations between two cumulative histograms.
fn quantile(q: f64, now: &[(f64, f64)], before: Option<&Vec<(f64, f64)>>) -> Option<f64> {
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, count)| {
            let earlier = before
                .and_then(|b| b.iter().find(|(l, _)| l == le))
                .map_or(0.0, |(_, c)| *c);
            (*le, count - earlier)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &delta {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            let share = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * share);
        }
        lower = (le, count);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renaming a metric in kit must not silently empty the dashboard: a
    /// real registry, fed by the real layers, is what the frame must read.
    #[tokio::test]
    async fn every_family_the_dashboard_reads_is_in_a_real_exposition() {
        use tower::ServiceExt;
        let registry = kit::metrics::Registry::new();
        let _breakers = kit::resilience::Breakers::new(&registry);
        let mut settings = crate::cache::MicroCacheSettings::default();
        for policy in settings.routes.values_mut() {
            policy.ttl = std::time::Duration::ZERO;
        }
        let cache = crate::cache::Store::new(&settings, &registry);
        let app = axum::Router::new()
            .route(
                "/api/v1/articles",
                axum::routing::get(|| async { "{}" }).post(|| async { "{}" }),
            )
            .layer(crate::cache::MicroCache::layer(&cache))
            .layer(kit::metrics::HttpMetricsLayer::new(
                kit::metrics::HttpMetrics::new(&registry),
            ));
        // A miss, a stale answer and its refresh, a write that evicts, a
        // read that finds the copy evicted.
        for method in ["GET", "GET", "POST", "GET"] {
            let request = axum::http::Request::builder()
                .method(method)
                .uri("/api/v1/articles")
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
            tokio::task::yield_now().await;
        }

        let text = registry.encode();
        let frame = Frame::from_exposition(&text, 0);
        assert_eq!(frame.total_requests(), 4.0, "{text}");
        assert!(!frame.buckets.is_empty(), "{text}");
        assert!(!frame.cache_requests.is_empty(), "{text}");
        assert!(!frame.cache_refreshes.is_empty(), "{text}");
        assert!(!frame.cache_evictions.is_empty(), "{text}");
        assert!(!frame.cache_bytes.is_empty(), "{text}");
        // No breaker has been used yet: the families are declared, empty.
        for family in [names::BREAKER_STATE, names::BREAKER_CALLS] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{text}");
        }
    }

    fn exposition(ok: u64, fast: u64, slow: u64) -> String {
        let total = fast + slow;
        format!(
            "http_server_requests_total{{route=\"/api/v1/articles\",method=\"GET\",status=\"200\"}} {ok}\n\
             http_server_request_duration_seconds_bucket{{le=\"0.01\",route=\"/api/v1/articles\",method=\"GET\"}} {fast}\n\
             http_server_request_duration_seconds_bucket{{le=\"0.1\",route=\"/api/v1/articles\",method=\"GET\"}} {total}\n\
             http_server_request_duration_seconds_bucket{{le=\"+Inf\",route=\"/api/v1/articles\",method=\"GET\"}} {total}\n\
             breaker_state{{breaker=\"content\"}} 1\n\
             breaker_calls_total{{breaker=\"content\",outcome=\"failure\"}} 3\n\
             breaker_calls_total{{breaker=\"content\",outcome=\"success\"}} 1\n"
        )
    }

    #[test]
    fn rates_and_percentiles_come_from_differences_within_the_window() {
        let mut window = Window::default();
        window.push(Frame::from_exposition(&exposition(100, 100, 0), 0));
        window.push(Frame::from_exposition(&exposition(200, 150, 50), 10_000));
        let snapshot = window.snapshot(vec![]);
        assert!((snapshot.qps - 10.0).abs() < 1e-9, "{}", snapshot.qps);
        assert_eq!(snapshot.qps_series.len(), 1);
        let api = &snapshot.apis[0];
        assert_eq!(api.route, "/api/v1/articles");
        assert!((api.requests - 100.0).abs() < 1e-9);
        // 50 fast and 50 slow: the 98th is near the top of the slow bucket.
        let p98 = api.p98_ms.unwrap();
        assert!(p98 > 90.0 && p98 <= 100.0, "{p98}");
        assert_eq!(snapshot.statuses[0].status, "200");
        assert_eq!(snapshot.breakers[0].state, "open");
    }

    #[test]
    fn probes_are_neither_api_requests_nor_errors() {
        let probes = |n: u64| {
            format!(
                "http_server_requests_total{{route=\"/readyz\",method=\"GET\",status=\"503\"}} {n}\n\
                 http_server_requests_total{{route=\"/healthz\",method=\"GET\",status=\"200\"}} {n}\n\
                 http_server_request_duration_seconds_bucket{{le=\"+Inf\",route=\"/readyz\",method=\"GET\"}} {n}\n"
            )
        };
        let mut window = Window::default();
        window.push(Frame::from_exposition(
            &(exposition(0, 0, 0) + &probes(0)),
            0,
        ));
        window.push(Frame::from_exposition(
            &(exposition(10, 10, 0) + &probes(30)),
            10_000,
        ));
        let snapshot = window.snapshot(vec![]);
        let routes: Vec<&str> = snapshot.apis.iter().map(|a| a.route.as_str()).collect();
        assert_eq!(routes, ["/api/v1/articles"]);
        assert_eq!(snapshot.apis[0].error_ratio, 0.0);
        let statuses: Vec<&str> = snapshot
            .statuses
            .iter()
            .map(|s| s.status.as_str())
            .collect();
        assert_eq!(statuses, ["200"]);
        assert_eq!(snapshot.requests, 10.0);
    }

    #[test]
    fn the_hit_ratio_counts_every_answer_that_cost_no_load_of_its_own() {
        let cache = |hit: u64, stale: u64, miss: u64, bypass: u64| {
            format!(
                "http_cache_requests_total{{route=\"/api/v1/articles\",outcome=\"hit\"}} {hit}\n\
                 http_cache_requests_total{{route=\"/api/v1/articles\",outcome=\"stale_if_error\"}} {stale}\n\
                 http_cache_requests_total{{route=\"/api/v1/articles\",outcome=\"miss\"}} {miss}\n\
                 http_cache_requests_total{{route=\"/api/v1/articles\",outcome=\"bypass\"}} {bypass}\n\
                 http_cache_bytes{{route=\"/api/v1/articles\"}} 4096\n"
            )
        };
        let mut window = Window::default();
        window.push(Frame::from_exposition(&cache(10, 0, 10, 0), 0));
        window.push(Frame::from_exposition(&cache(80, 10, 20, 50), 10_000));
        let snapshot = window.snapshot(vec![]);
        // 70 hits and 10 stale of 90 looked up; bypasses are not lookups.
        let ratio = snapshot.cache_hit_ratio.unwrap();
        assert!((ratio - 80.0 / 90.0).abs() < 1e-9, "{ratio}");
        let route = &snapshot.cache[0];
        assert_eq!(route.route, "/api/v1/articles");
        assert_eq!(
            (route.hits, route.stale, route.misses, route.bypass),
            (70.0, 10.0, 10.0, 50.0)
        );
        assert_eq!(route.bytes, 4096.0);
    }

    #[test]
    fn a_window_without_requests_has_no_percentile() {
        assert_eq!(
            quantile(
                0.98,
                &[(0.1, 5.0), (f64::INFINITY, 5.0)],
                Some(&vec![(0.1, 5.0), (f64::INFINITY, 5.0)])
            ),
            None
        );
    }
}

//! Background tasks with a Sentry hub of their own.
//!
//! Sentry keeps its scope (tags, breadcrumbs) in a hub per thread; tokio
//! moves tasks between threads and runs many on one, so a task that tags its
//! scope would tag every other task polled on that thread. Requests get a hub
//! each from [`super::report`]; long-lived tasks (registration, discovery
//! watches, servers, the dashboard sampler) get one from [`spawn`], tagged
//! with the task's name so a report says which loop it came from.

use std::future::Future;
use std::sync::Arc;

use sentry::{Hub, SentryFutureExt as _};
use tokio::task::JoinHandle;

/// `tokio::spawn`, with the task bound to a hub forked from the caller's.
/// Without a Sentry client this is plain `tokio::spawn`.
pub fn spawn<F>(name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if Hub::current().client().is_none() {
        return tokio::spawn(future);
    }
    let hub = Arc::new(Hub::new_from_top(Hub::current()));
    hub.configure_scope(|scope| scope.set_tag("task", name));
    tokio::spawn(future.bind_hub(hub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_s_scope_stays_its_own_on_a_shared_thread() {
        let events = sentry::test::with_captured_events(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let tagged = spawn("tagger", async {
                    sentry::configure_scope(|scope| scope.set_tag("order", "42"));
                    tokio::task::yield_now().await;
                    sentry::capture_message("from the tagger", sentry::Level::Error);
                });
                let other = spawn("other", async {
                    tokio::task::yield_now().await;
                    sentry::capture_message("from the other", sentry::Level::Error);
                });
                tagged.await.unwrap();
                other.await.unwrap();
            });
        });
        assert_eq!(events.len(), 2);
        for event in &events {
            let message = event.message.as_deref().unwrap();
            match message {
                "from the tagger" => {
                    assert_eq!(event.tags["task"], "tagger");
                    assert_eq!(event.tags["order"], "42");
                }
                _ => {
                    assert_eq!(event.tags["task"], "other");
                    assert!(!event.tags.contains_key("order"), "{:?}", event.tags);
                }
            }
        }
    }
}

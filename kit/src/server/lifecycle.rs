//! The one shutdown sequence of the code base: both front ends hand their
//! serving task and their "leave" step to [`Lifecycle::run`].

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{PlatformSettings, ServerError};
use crate::admin;

/// The admin port and the shutdown settings of one process.
pub(super) struct Lifecycle {
    name: String,
    settings: PlatformSettings,
    admin: TcpListener,
    admin_addr: SocketAddr,
    admin_stop: CancellationToken,
}

/// A front end that is accepting: its task, and the token that makes it
/// stop accepting and drain (GOAWAY for gRPC, connection close for HTTP).
pub(super) struct Serving {
    pub task: JoinHandle<Result<(), ServerError>>,
    pub drain: CancellationToken,
    /// The main port, for the start-up log line.
    pub addr: SocketAddr,
}

impl Lifecycle {
    /// Binds the admin port.
    pub async fn bind(name: &str, settings: &PlatformSettings) -> Result<Self, ServerError> {
        let bind_error = |source| ServerError::Bind {
            what: "admin",
            host: settings.admin.host.clone(),
            port: settings.admin.port,
            source,
        };
        let admin = settings.admin.bind().await.map_err(bind_error)?;
        let admin_addr = admin.local_addr().map_err(bind_error)?;
        Ok(Self {
            name: name.to_owned(),
            settings: settings.clone(),
            admin,
            admin_addr,
            admin_stop: CancellationToken::new(),
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Cancelled when the admin port stops: long-lived admin streams (the
    /// gateway's dashboard) end then, or the admin server would wait for
    /// them forever.
    pub fn admin_stop(&self) -> CancellationToken {
        self.admin_stop.clone()
    }

    /// Serves the admin port beside `serving` until `signal` completes, then
    /// shuts down in order: `leave` (not ready, out of etcd) → propagation
    /// delay → drain, bounded by the drain timeout → admin port stop →
    /// telemetry flush. When the front end stops by itself, `leave` still
    /// runs (nobody must keep dialing a dead instance) and its error is
    /// returned.
    pub async fn run(
        self,
        admin_router: Router,
        serving: Serving,
        signal: impl Future<Output = ()>,
        leave: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let Self {
            name,
            settings,
            admin,
            admin_addr,
            admin_stop,
        } = self;
        let Serving {
            task: mut serving,
            drain,
            addr,
        } = serving;
        let admin_task = crate::telemetry::spawn(
            "admin-server",
            admin::serve(admin, admin_router, admin_stop.clone().cancelled_owned()),
        );
        tracing::info!(service = %name, addr = %addr, admin = %admin_addr, "serving");

        let early = tokio::select! {
            () = signal => None,
            result = &mut serving => Some(result),
        };
        if let Some(result) = early {
            leave.await;
            admin_stop.cancel();
            return result?;
        }

        tracing::info!(service = %name, "shutting down: not ready, leaving discovery");
        leave.await;
        tokio::time::sleep(settings.shutdown.propagation_delay).await;
        tracing::info!(service = %name, "closing the listener and draining requests");
        drain.cancel();
        match tokio::time::timeout(settings.shutdown.drain_timeout, &mut serving).await {
            Ok(Ok(Ok(()))) => tracing::info!(service = %name, "drained"),
            Ok(Ok(Err(e))) => {
                tracing::error!(service = %name, error = %e, "server failed while draining")
            }
            Ok(Err(e)) => tracing::error!(service = %name, error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!(service = %name, timeout = ?settings.shutdown.drain_timeout, "drain timed out; dropping open requests");
                serving.abort();
            }
        }
        admin_stop.cancel();
        let _ = admin_task.await;
        // Last: the spans and reports of the drained requests.
        crate::telemetry::flush(settings.telemetry.flush_timeout).await;
        Ok(())
    }
}

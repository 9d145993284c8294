use axum::extract::MatchedPath;
use tower_http::trace::MakeSpan;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The request span of a server, child of the caller's span when the request
/// carries a trace context: `RequestSpan::layer(ServerSpan::http())`.
///
/// The context is extracted while the span is made, before it is entered,
/// so everything the handler does (logs, client calls) is in the caller's
/// trace.
#[derive(Debug, Clone, Copy)]
pub struct ServerSpan {
    grpc: bool,
}

impl ServerSpan {
    /// Spans named `GET /api/v1/articles/{id}`: the route template, never
    /// the raw path, so span names stay few.
    pub fn http() -> Self {
        Self { grpc: false }
    }

    /// Spans named after the gRPC method, `/content.v1.ContentService/GetArticle`.
    pub fn grpc() -> Self {
        Self { grpc: true }
    }
}

impl<B> MakeSpan<B> for ServerSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        // Without a tracer the span only gives log lines their context, and
        // the fmt layer formats every field of it for every request: the
        // otel.* and rpc.system fields would be formatted for nobody.
        let traced = super::super::tracing_enabled();
        let span = if self.grpc {
            let method = request.uri().path();
            if traced {
                tracing::info_span!(
                    "grpc.server",
                    otel.name = method,
                    otel.kind = "server",
                    rpc.system = "grpc",
                    rpc.method = method,
                )
            } else {
                // `%`: a `&str` field is written with Debug, escaped char by
                // char, which was a third of the span's cost per call.
                tracing::info_span!("grpc.server", rpc.method = %method)
            }
        } else {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            if traced {
                tracing::info_span!(
                    "request",
                    otel.name = %format_args!("{} {route}", request.method()),
                    otel.kind = "server",
                    http.request.method = %request.method(),
                    http.route = route,
                    url.path = %request.uri().path(),
                )
            } else {
                tracing::info_span!(
                    "request",
                    http.request.method = %request.method(),
                    url.path = %request.uri().path(),
                )
            }
        };
        if traced {
            // Fails only when the span is disabled by the filter.
            let _ = span.set_parent(super::extract(request.headers()));
        }
        span
    }
}

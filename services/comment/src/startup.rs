use kit::cache::Cache;
use kit::client::Clients;
use kit::db::Migrations;
use kit::discovery::Resolver;
use kit::metrics::Registry;
use kit::server::GrpcServer;
use proto::comment::v1::comment_service_server::CommentServiceServer;
use proto::content::v1::content_service_client::ContentServiceClient;

use crate::api::CommentApi;
use crate::repository::CommentRepository;
use crate::settings::Settings;

pub const MIGRATIONS: Migrations = kit::migrations!();

/// Connects the database, applies migrations, sets up the cache, starts
/// discovery of the content service and binds the ports; the returned server
/// is ready to `run_until` a shutdown signal.
pub async fn build(settings: Settings) -> anyhow::Result<GrpcServer> {
    let registry = Registry::new();
    let pool = kit::db::connect(&settings.database, MIGRATIONS).await?;
    kit::db::export_pool(&pool, &registry);
    let cache = Cache::new(&settings.cache, &registry)?;
    let platform = &settings.platform;
    let resolver = Resolver::spawn(&platform.discovery, &platform.channel, &registry);
    let clients = Clients::new(&resolver, &registry, &platform.resilience)?;
    let content = kit::with_message_limits!(
        ContentServiceClient::new(clients.channel(crate::CONTENT_SERVICE)),
        &platform.channel.messages
    );
    let api = CommentApi::new(CommentRepository::new(pool, &registry), content, &cache);
    Ok(GrpcServer::bind(crate::SERVICE, platform, &registry)
        .await?
        .reflection(proto::comment::v1::FILE_DESCRIPTOR_SET)
        .add_service(kit::with_message_limits!(
            CommentServiceServer::new(api),
            &platform.grpc.messages
        ))
        .calls_through(resolver, &[crate::CONTENT_SERVICE])?)
}

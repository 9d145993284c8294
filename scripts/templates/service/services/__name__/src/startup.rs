use kit::cache::Cache;
use kit::db::Migrations;
use kit::metrics::Registry;
use kit::server::GrpcServer;
use proto::__name__::v1::__name___service_server::__Name__ServiceServer;

use crate::api::__Name__Api;
use crate::repository::__Name__Repository;
use crate::settings::Settings;

pub const MIGRATIONS: Migrations = kit::migrations!();

/// Connects the database, applies migrations, sets up the cache and binds
/// the ports; the returned server is ready to `run_until` a shutdown signal.
pub async fn build(settings: Settings) -> anyhow::Result<GrpcServer> {
    let registry = Registry::new();
    let pool = kit::db::connect(&settings.database, MIGRATIONS).await?;
    kit::db::export_pool(&pool, &registry);
    let cache = Cache::new(&settings.cache, &registry)?;
    let api = __Name__Api::new(__Name__Repository::new(pool, &registry), &cache);
    Ok(
        GrpcServer::bind(crate::SERVICE, &settings.platform, &registry)
            .await?
            .reflection(proto::__name__::v1::FILE_DESCRIPTOR_SET)
            .add_service(kit::with_message_limits!(
                __Name__ServiceServer::new(api),
                &settings.platform.grpc.messages
            )),
    )
}

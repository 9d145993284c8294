use kit::cache::Cache;
use kit::db::Migrations;
use kit::metrics::Registry;
use kit::server::GrpcServer;
use proto::user::v1::user_service_server::UserServiceServer;

use crate::api::UserApi;
use crate::password::Hasher;
use crate::repository::UserRepository;
use crate::settings::Settings;

pub const MIGRATIONS: Migrations = kit::migrations!();

/// Connects the database, applies migrations, sets up the cache and binds
/// the ports; the returned server is ready to `run_until` a shutdown signal.
pub async fn build(settings: Settings) -> anyhow::Result<GrpcServer> {
    let registry = Registry::new();
    let pool = kit::db::connect(&settings.database, MIGRATIONS).await?;
    kit::db::export_pool(&pool, &registry);
    let cache = Cache::new(&settings.cache, &registry)?;
    let api = UserApi::new(
        UserRepository::new(pool, &registry),
        Hasher::new(&settings.password)?,
        &cache,
    );
    Ok(
        GrpcServer::bind(crate::SERVICE, &settings.platform, &registry)
            .await?
            .reflection(proto::user::v1::FILE_DESCRIPTOR_SET)
            .add_service(kit::with_message_limits!(
                UserServiceServer::new(api),
                &settings.platform.grpc.messages
            )),
    )
}

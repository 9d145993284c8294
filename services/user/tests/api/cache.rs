//! The user cache through the API: what a read costs in SQL, read-your-write
//! and a Redis that dies.

use kit::db::{Backend, DatabaseSettings};
use kit::metrics::Registry;
use kit::testing::{self, RedisProcess};
use proto::user::v1 as pb;
use tonic::Code;
use user::domain::{DisplayName, Username};
use user::repository::UserRepository;

use crate::helpers::{TestApp, spawn_app_with};

/// SQL statements that read users by id.
async fn user_reads(app: &TestApp) -> f64 {
    app.queries("user_by_id").await + app.queries("users_by_ids").await
}

/// Inserts a user behind the service's back, so that it is not cached.
async fn insert_uncached(app: &TestApp, raw: &str) -> i64 {
    let settings = DatabaseSettings {
        url: app.database_url.clone().into(),
        ..Default::default()
    };
    let pool = kit::db::connect(&settings, user::startup::MIGRATIONS)
        .await
        .unwrap();
    let username = Username::parse(raw).unwrap();
    let display = DisplayName::parse("", &username).unwrap();
    UserRepository::new(pool, &Registry::new())
        .insert(&username, &display, "not a hash")
        .await
        .unwrap()
        .id
}

async fn create(app: &mut TestApp, username: &str) -> pb::User {
    app.client
        .create_user(pb::CreateUserRequest {
            username: username.into(),
            password: "correct horse".into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
}

fn caches() -> [(&'static str, kit::cache::CacheSettings); 2] {
    [
        ("redis", testing::redis_cache("user")),
        ("local", testing::local_cache()),
    ]
}

#[tokio::test]
async fn a_hundred_concurrent_reads_of_an_uncached_user_cost_one_query() {
    for (store, cache) in caches() {
        let app = spawn_app_with(Backend::MySql, cache).await;
        let id = insert_uncached(&app, "popular").await;
        let reads = (0..100).map(|i| {
            let mut client = app.client.clone();
            async move {
                if i % 2 == 0 {
                    let user = client.get_user(pb::GetUserRequest { id }).await?;
                    Ok::<_, tonic::Status>(user.into_inner().user.map(|u| u.id))
                } else {
                    let users = client
                        .batch_get_users(pb::BatchGetUsersRequest { ids: vec![id] })
                        .await?;
                    Ok(users.into_inner().users.first().map(|u| u.id))
                }
            }
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap(), Some(id), "{store}");
        }
        assert_eq!(user_reads(&app).await, 1.0, "{store}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_batch_reads_only_the_users_the_cache_lacks_in_one_query() {
    for (store, cache) in caches() {
        let mut app = spawn_app_with(Backend::MySql, cache).await;
        let cached = create(&mut app, "cached").await;
        let uncached = insert_uncached(&app, "uncached").await;
        let before = user_reads(&app).await;
        let users = app
            .client
            .batch_get_users(pb::BatchGetUsersRequest {
                ids: vec![cached.id, uncached, 424_242],
            })
            .await
            .unwrap()
            .into_inner()
            .users;
        assert_eq!(users.len(), 2, "{store}");
        assert_eq!(user_reads(&app).await - before, 1.0, "{store}");

        // All three answers are cached now, the unknown id as "not found".
        app.client
            .batch_get_users(pb::BatchGetUsersRequest {
                ids: vec![cached.id, uncached, 424_242],
            })
            .await
            .unwrap();
        let metrics = app.metrics().await;
        assert_eq!(user_reads(&app).await - before, 1.0, "{store}");
        assert!(
            testing::metric(
                &metrics,
                "cache_requests_total",
                &[("cache", "users"), ("result", "hit")]
            ) >= 3.0,
            "{store}: {metrics}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_user_looked_up_before_sign_up_is_found_right_after() {
    for (store, cache) in caches() {
        let mut app = spawn_app_with(Backend::MySql, cache).await;
        let first = create(&mut app, "first").await;
        let next = first.id + 1;
        let err = app
            .client
            .get_user(pb::GetUserRequest { id: next })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let second = create(&mut app, "second").await;
        assert_eq!(second.id, next, "ids are sequential on a fresh database");
        let fetched = app
            .client
            .get_user(pb::GetUserRequest { id: next })
            .await
            .unwrap()
            .into_inner()
            .user;
        assert_eq!(fetched, Some(second), "{store}");
        app.stop().await;
    }
}

#[tokio::test]
async fn with_redis_killed_mid_test_every_request_still_succeeds() {
    let mut redis = RedisProcess::start().await;
    let cache = kit::cache::CacheSettings {
        redis_url: Some(redis.url().into()),
        ..testing::redis_cache("user")
    };
    let mut app = spawn_app_with(Backend::MySql, cache).await;
    let before = create(&mut app, "before").await;
    let get = pb::GetUserRequest { id: before.id };
    app.client.get_user(get).await.unwrap();

    redis.kill();
    let after = create(&mut app, "after").await;
    for _ in 0..3 {
        let fetched = app.client.get_user(get).await.unwrap();
        assert_eq!(fetched.into_inner().user, Some(before.clone()));
        let batch = app
            .client
            .batch_get_users(pb::BatchGetUsersRequest {
                ids: vec![before.id, after.id],
            })
            .await
            .unwrap();
        assert_eq!(batch.into_inner().users.len(), 2);
    }
    let errors = testing::metric(&app.metrics().await, "cache_errors_total", &[]);
    assert!(errors > 0.0, "the failures were counted");
    app.stop().await;
}

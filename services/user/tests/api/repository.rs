//! Every repository function, straight against MariaDB and SQLite.

use kit::db::{Backend, DatabaseSettings};
use kit::metrics::Registry;
use kit::testing;
use user::domain::{DisplayName, Username};
use user::error::Error;
use user::repository::UserRepository;

async fn repository(backend: Backend, dir: &std::path::Path) -> UserRepository {
    let settings = DatabaseSettings {
        url: testing::database(backend, dir, "user").await.into(),
        ..Default::default()
    };
    let pool = kit::db::connect(&settings, user::startup::MIGRATIONS)
        .await
        .unwrap();
    UserRepository::new(pool, &Registry::new())
}

fn name(raw: &str) -> (Username, DisplayName) {
    let username = Username::parse(raw).unwrap();
    let display = DisplayName::parse("", &username).unwrap();
    (username, display)
}

#[tokio::test]
async fn users_are_stored_and_found_by_id_ids_and_name() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let dir = tempfile::tempdir().unwrap();
        let users = repository(backend, dir.path()).await;
        let (alice, alice_display) = name("alice");
        let (bob, bob_display) = name("bob");
        let a = users
            .insert(&alice, &alice_display, "hash-a")
            .await
            .unwrap();
        let b = users.insert(&bob, &bob_display, "hash-b").await.unwrap();
        assert!(b.id > a.id, "{backend:?}");

        assert_eq!(users.by_id(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(users.by_id(b.id + 100).await.unwrap(), None);

        let mut found = users.by_ids(&[b.id, a.id, b.id + 100]).await.unwrap();
        found.sort_by_key(|u| u.id);
        assert_eq!(found, vec![a.clone(), b.clone()], "{backend:?}");
        assert!(users.by_ids(&[]).await.unwrap().is_empty());

        let credentials = users.credentials(&alice).await.unwrap().unwrap();
        assert_eq!(credentials.user, a);
        assert_eq!(credentials.password_hash, "hash-a");
        let (nobody, _) = name("nobody");
        assert!(users.credentials(&nobody).await.unwrap().is_none());

        assert_eq!(
            users.queries().get("users_by_ids"),
            1,
            "the empty batch ran no query"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_a_second_user_with_a_taken_name() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let dir = tempfile::tempdir().unwrap();
        let users = repository(backend, dir.path()).await;
        let (carol, display) = name("carol");
        users.insert(&carol, &display, "h").await.unwrap();
        let err = users.insert(&carol, &display, "h").await.unwrap_err();
        assert!(matches!(err, Error::UsernameTaken(_)), "{backend:?}: {err}");
    }
}

use kit::db::Backend;
use proto::user::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, spawn_app_on};

async fn create(app: &mut TestApp, username: &str) -> pb::User {
    app.client
        .create_user(pb::CreateUserRequest {
            username: username.into(),
            password: "correct horse".into(),
            display_name: format!("{username} display"),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
}

#[tokio::test]
async fn a_created_user_can_be_fetched_and_authenticated() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let created = create(&mut app, "Alice").await;
        assert_eq!(created.username, "alice");
        assert!(created.id > 0);
        assert!(created.created_at.is_some());

        let fetched = app
            .client
            .get_user(pb::GetUserRequest { id: created.id })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(fetched, created);

        let authenticated = app
            .client
            .authenticate(pb::AuthenticateRequest {
                username: "ALICE".into(),
                password: "correct horse".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(authenticated, created);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_taken_username_is_already_exists_whatever_its_case() {
    let mut app = spawn_app().await;
    create(&mut app, "bob").await;
    let err = app
        .client
        .create_user(pb::CreateUserRequest {
            username: "BOB".into(),
            password: "another password".into(),
            display_name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_look_the_same() {
    let mut app = spawn_app().await;
    create(&mut app, "carol").await;
    let huge = "x".repeat(1 << 20);
    for (username, password) in [
        ("carol", "wrong password"),
        ("nobody", "correct horse"),
        ("", ""),
        // Malformed: refused like the rest, whatever their size; usernames
        // are never trimmed.
        (" carol", "correct horse"),
        (huge.as_str(), "correct horse"),
        ("carol", huge.as_str()),
    ] {
        let err = app
            .client
            .authenticate(pb::AuthenticateRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.message(), "invalid username or password");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_user_is_not_found_and_a_bad_id_is_invalid() {
    let mut app = spawn_app().await;
    let err = app
        .client
        .get_user(pb::GetUserRequest { id: 999_999 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .client
        .get_user(pb::GetUserRequest { id: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn batch_get_answers_the_existing_users_in_one_call() {
    let mut app = spawn_app().await;
    let a = create(&mut app, "dave").await;
    let b = create(&mut app, "erin").await;
    let mut users = app
        .client
        .batch_get_users(pb::BatchGetUsersRequest {
            ids: vec![b.id, a.id, a.id, 424_242],
        })
        .await
        .unwrap()
        .into_inner()
        .users;
    users.sort_by_key(|u| u.id);
    assert_eq!(users, vec![a, b]);

    let empty = app
        .client
        .batch_get_users(pb::BatchGetUsersRequest { ids: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.users.is_empty());
    app.stop().await;
}

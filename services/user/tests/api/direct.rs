//! A client that skips the gateway and calls the user service itself gets
//! the gateway's rules: every broken one is INVALID_ARGUMENT, answered
//! before any query runs, never a panic. (A malformed login is
//! UNAUTHENTICATED, like a wrong password: users.rs.)

use kit::testing::{hostile, metric};
use kit::validate::{DISPLAY_NAME_MAX, PASSWORD_MAX, USERNAME_MAX};
use proto::user::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};

async fn all_queries(app: &TestApp) -> f64 {
    metric(&app.metrics().await, "db_queries_total", &[])
}

fn sign_up(username: &str, password: &str, display_name: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: username.into(),
        password: password.into(),
        display_name: display_name.into(),
    }
}

#[tokio::test]
async fn every_broken_rule_is_invalid_argument_before_any_query() {
    let mut app = spawn_app().await;
    let before = all_queries(&app).await;
    let good = "correct horse";
    let huge = "x".repeat(1 << 20);
    let long_username = "a".repeat(USERNAME_MAX + 1);
    let long_password = "p".repeat(PASSWORD_MAX + 1);
    let long_name = "n".repeat(DISPLAY_NAME_MAX + 1);
    let sign_ups = [
        sign_up("", good, ""),
        sign_up("ab", good, ""),
        sign_up(&long_username, good, ""),
        sign_up(" alice", good, ""),
        sign_up("alice\n", good, ""),
        sign_up("al ice", good, ""),
        sign_up("émile", good, ""),
        sign_up(&huge, good, ""),
        sign_up("alice", "seven..", ""),
        sign_up("alice", &long_password, ""),
        sign_up("alice", &huge, ""),
        sign_up("alice", good, &long_name),
        sign_up("alice", good, "a\u{0}b"),
        sign_up("alice", good, "a\nb"),
        sign_up("alice", good, &huge),
    ];
    for request in sign_ups {
        let what = format!("{:.40?}/{:.40?}", request.username, request.display_name);
        let err = app.client.create_user(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    for id in hostile::IDS {
        let err = app
            .client
            .get_user(pb::GetUserRequest { id })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{id}");
    }
    for ids in hostile::batches() {
        let n = ids.len();
        let err = app
            .client
            .batch_get_users(pb::BatchGetUsersRequest { ids })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "a batch of {n}");
    }
    assert_eq!(
        all_queries(&app).await,
        before,
        "a refused call ran a query"
    );

    // Still serving.
    app.client
        .create_user(sign_up("alice", good, ""))
        .await
        .unwrap();
    app.stop().await;
}

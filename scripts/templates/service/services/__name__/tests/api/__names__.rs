//! One test per RPC against real etcd and MariaDB (and SQLite, which
//! `make run` uses), through the service's own gRPC port.

use kit::db::Backend;
use kit::testing;
use proto::__name__::v1 as pb;
use tonic::Code;

use crate::helpers::{spawn_app, spawn_app_on};

#[tokio::test]
async fn a_created___name___is_stored_and_registered_in_etcd() {
    let mut app = spawn_app().await;
    let created = app.create("first").await;
    assert!(created.id > 0);
    assert_eq!(created.text, "first");
    assert!(created.created_at.is_some());
    assert_eq!(
        testing::await_registered(&app.prefix, __name__::SERVICE, 1).await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn get_answers_a___name___from_the_cache_after_the_first_read_and_not_found_for_none() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let created = app.create("cached").await;
        for _ in 0..3 {
            let got = app
                .client
                .get___name__(pb::Get__Name__Request { id: created.id })
                .await
                .unwrap()
                .into_inner()
                .__name__
                .unwrap();
            assert_eq!(got, created, "{backend:?}");
        }
        assert_eq!(app.queries("__name___by_id").await, 1.0, "{backend:?}");
        let missing = app
            .client
            .get___name__(pb::Get__Name__Request { id: 999_999 })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_list_pages_newest_first() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(app.create(&format!("q{i}")).await.id);
        }
        ids.reverse();
        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = app
                .client
                .list___names__(pb::List__Names__Request {
                    page_size: 2,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.__names__.iter().map(|q| q.id));
            page_token = page.next_page_token;
            if page_token.is_empty() {
                break;
            }
        }
        assert_eq!(seen, ids, "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_invalid_argument() {
    let mut app = spawn_app().await;
    for (author_id, text) in [(0, "x"), (1, "   "), (1, &"x".repeat(1001))] {
        let err = app
            .client
            .create___name__(pb::Create__Name__Request {
                author_id,
                text: text.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    let err = app
        .client
        .list___names__(pb::List__Names__Request {
            page_size: 1,
            page_token: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

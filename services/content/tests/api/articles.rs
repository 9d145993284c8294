use kit::db::Backend;
use proto::content::v1 as pb;
use tonic::Code;

use crate::helpers::{spawn_app, spawn_app_on};

#[tokio::test]
async fn a_created_article_can_be_fetched() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let created = app.create(7, "  Rates rise  ").await;
        assert_eq!(created.title, "Rates rise");
        assert_eq!(created.author_id, 7);
        let fetched = app
            .client
            .get_article(pb::GetArticleRequest { id: created.id })
            .await
            .unwrap()
            .into_inner()
            .article
            .unwrap();
        assert_eq!(fetched, created);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_list_pages_newest_first_until_the_last_page() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(app.create(1, &format!("a{i}")).await.id);
        }
        ids.reverse();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = app
                .client
                .list_articles(pb::ListArticlesRequest {
                    page_size: 2,
                    page_token: token,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.articles.len() <= 2);
            seen.extend(page.articles.iter().map(|a| a.id));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(seen, ids);
        app.stop().await;
    }
}

#[tokio::test]
async fn an_empty_list_has_no_next_page() {
    let mut app = spawn_app().await;
    let page = app
        .client
        .list_articles(pb::ListArticlesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(page.articles.is_empty());
    assert!(page.next_page_token.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_invalid_argument() {
    let mut app = spawn_app().await;
    let bad_creates = [
        (0, "title", "body"),
        (1, "   ", "body"),
        (1, "title", ""),
        (1, &"t".repeat(201), "body"),
    ];
    for (author_id, title, body) in bad_creates {
        let err = app
            .client
            .create_article(pb::CreateArticleRequest {
                author_id,
                title: title.into(),
                body: body.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{author_id}/{title}/{body}"
        );
    }
    for (page_size, page_token) in [(-1, ""), (101, ""), (10, "forged")] {
        let err = app
            .client
            .list_articles(pb::ListArticlesRequest {
                page_size,
                page_token: page_token.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_article_is_not_found() {
    let mut app = spawn_app().await;
    let err = app
        .client
        .get_article(pb::GetArticleRequest { id: 123_456 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

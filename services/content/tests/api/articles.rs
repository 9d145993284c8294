use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

#[tokio::test]
async fn the_first_page_is_cached_until_an_article_is_published() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        app.create(1, "old").await;
        let first = |mut client: pb::content_service_client::ContentServiceClient<_>| async move {
            client
                .list_articles(pb::ListArticlesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .articles
        };
        assert_eq!(first(app.client.clone()).await.len(), 1);
        assert_eq!(first(app.client.clone()).await.len(), 1);
        assert_eq!(
            app.queries("articles_page").await,
            1.0,
            "{backend:?}: a hit"
        );

        let new = app.create(1, "new").await;
        let page = first(app.client.clone()).await;
        assert_eq!(
            page.first().map(|a| (a.id, a.summary.as_str())),
            Some((new.id, new.body.as_str())),
            "{backend:?}: read-your-write"
        );
        assert_eq!(app.queries("articles_page").await, 2.0);
        app.stop().await;
    }
}

#[tokio::test]
async fn paging_through_a_thousand_articles_while_others_are_published_sees_each_once() {
    let mut app = spawn_app().await;
    let seeded: BTreeSet<i64> = {
        // Seeding straight into the service's database is quicker than 1,000
        // calls; the repository is the one the service uses.
        let pool = kit::db::connect(&app.settings.database, content::startup::MIGRATIONS)
            .await
            .unwrap();
        let articles =
            content::repository::ArticleRepository::new(pool, &kit::metrics::Registry::new());
        let mut ids = BTreeSet::new();
        for chunk in 0..20 {
            let inserts = (0..50).map(|i| {
                let articles = articles.clone();
                async move { articles.insert(1, &format!("seed {chunk}/{i}"), "b").await }
            });
            for article in futures::future::join_all(inserts).await {
                ids.insert(article.unwrap().id);
            }
        }
        ids
    };
    assert_eq!(seeded.len(), 1000);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (mut client, stop) = (app.client.clone(), stop.clone());
        async move {
            let mut published = 0;
            while !stop.load(Ordering::Relaxed) {
                client
                    .create_article(pb::CreateArticleRequest {
                        author_id: 2,
                        title: format!("live {published}"),
                        body: "b".into(),
                    })
                    .await
                    .unwrap();
                published += 1;
            }
            published
        }
    });

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .client
            .list_articles(pb::ListArticlesRequest {
                page_size: 7,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.articles.iter().map(|a| a.id));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let published = writer.await.unwrap();

    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first, no duplicates"
    );
    let seen_seeded: BTreeSet<i64> = seen
        .iter()
        .copied()
        .filter(|id| seeded.contains(id))
        .collect();
    assert_eq!(seen_seeded, seeded, "every seeded article exactly once");
    assert!(published > 0, "articles were published while paging");
    app.stop().await;
}

#[tokio::test]
async fn a_created_article_survives_a_restart() {
    let mut app = spawn_app().await;
    let created = app.create(3, "kept").await;
    app.restart().await;
    let fetched = app
        .client
        .get_article(pb::GetArticleRequest { id: created.id })
        .await
        .unwrap()
        .into_inner()
        .article;
    assert_eq!(fetched, Some(created));
    app.stop().await;
}

use kit::db::Backend;
use proto::comment::v1 as pb;
use tonic::Code;

use crate::helpers::{spawn_app, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn comments_are_listed_newest_first_page_by_page() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let article = app.article().await;
        let other = app.article().await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(app.comment(article, &format!("c{i}")).await.id);
        }
        app.comment(other, "elsewhere").await;
        ids.reverse();

        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = app
                .client
                .list_comments(pb::ListCommentsRequest {
                    article_id: article,
                    page_size: 2,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.comments.iter().all(|c| c.article_id == article));
            seen.extend(page.comments.iter().map(|c| c.id));
            page_token = page.next_page_token;
            if page_token.is_empty() {
                break;
            }
        }
        assert_eq!(seen, ids);
        app.stop().await;
    }
}

#[tokio::test]
async fn counts_answer_every_requested_article_in_one_call() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let busy = app.article().await;
        let quiet = app.article().await;
        for _ in 0..3 {
            app.comment(busy, "hi").await;
        }
        let counts = app
            .client
            .count_comments(pb::CountCommentsRequest {
                article_ids: vec![busy, quiet, busy, 999_999],
            })
            .await
            .unwrap()
            .into_inner()
            .counts;
        assert_eq!(counts.len(), 3);
        assert_eq!(counts[&busy], 3);
        assert_eq!(counts[&quiet], 0);
        assert_eq!(counts[&999_999], 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_comment_on_an_unknown_article_is_not_found() {
    let mut app = spawn_app().await;
    let err = app
        .client
        .create_comment(pb::CreateCommentRequest {
            article_id: 424_242,
            author_id: 1,
            body: "hello".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn without_the_content_service_comments_are_unavailable_not_lost_or_wrong() {
    let mut app = spawn_app().await;
    let article = app.article().await;
    app.content.take().unwrap().stop().await;
    let err = app
        .client
        .create_comment(pb::CreateCommentRequest {
            article_id: article,
            author_id: 1,
            body: "hello".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        !err.message().contains("127.0.0.1"),
        "internals leaked: {}",
        err.message()
    );
    let counts = app
        .client
        .count_comments(pb::CountCommentsRequest {
            article_ids: vec![article],
        })
        .await
        .unwrap()
        .into_inner()
        .counts;
    assert_eq!(counts[&article], 0, "a failed create must not be stored");
    app.stop().await;
}

#[tokio::test]
async fn a_content_instance_that_starts_later_is_found_and_used() {
    let mut app = spawn_app_with(Backend::Sqlite, false).await;
    let article = app.article().await;
    let mut last = None;
    for _ in 0..100 {
        let attempt = app
            .client
            .create_comment(pb::CreateCommentRequest {
                article_id: article,
                author_id: 1,
                body: "late".into(),
            })
            .await;
        match attempt {
            Ok(_) => {
                last = None;
                break;
            }
            Err(status) => last = Some(status),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(last.is_none(), "never found the content service: {last:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_cached_count_is_invalidated_by_a_new_comment() {
    for backend in [Backend::MySql, Backend::Sqlite] {
        let mut app = spawn_app_on(backend).await;
        let article = app.article().await;
        let count = |mut client: pb::comment_service_client::CommentServiceClient<_>| async move {
            client
                .count_comments(pb::CountCommentsRequest {
                    article_ids: vec![article],
                })
                .await
                .unwrap()
                .into_inner()
                .counts[&article]
        };
        assert_eq!(count(app.client.clone()).await, 0);
        assert_eq!(count(app.client.clone()).await, 0);
        assert_eq!(
            app.queries("comment_counts").await,
            1.0,
            "{backend:?}: a hit"
        );

        app.comment(article, "first!").await;
        assert_eq!(
            count(app.client.clone()).await,
            1,
            "{backend:?}: read-your-write"
        );
        assert_eq!(app.queries("comment_counts").await, 2.0);
        app.stop().await;
    }
}

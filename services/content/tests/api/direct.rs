//! A client that skips the gateway and calls the content service itself
//! gets the gateway's rules: every broken one is INVALID_ARGUMENT, answered
//! before any query runs, never a panic or an unbounded page.

use kit::testing::hostile;
use kit::validate::{ARTICLE_BODY_MAX, TITLE_MAX};
use proto::content::v1 as pb;
use tonic::Code;

use crate::helpers::spawn_app;

fn article(author_id: i64, title: &str, body: &str) -> pb::CreateArticleRequest {
    pb::CreateArticleRequest {
        author_id,
        title: title.into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn every_broken_rule_is_invalid_argument_before_any_query() {
    let mut app = spawn_app().await;
    let before = app.all_queries().await;
    let mut creates: Vec<_> = hostile::IDS
        .iter()
        .map(|id| article(*id, "title", "body"))
        .collect();
    creates.extend(
        hostile::texts(TITLE_MAX)
            .iter()
            .map(|t| article(1, t, "body")),
    );
    creates.extend(
        hostile::texts(ARTICLE_BODY_MAX)
            .iter()
            .map(|b| article(1, "title", b)),
    );
    for request in creates {
        let what = format!(
            "{}/{:.40?}/{:.40?}",
            request.author_id, request.title, request.body
        );
        let err = app.client.create_article(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    for id in hostile::IDS {
        let err = app
            .client
            .get_article(pb::GetArticleRequest { id })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{id}");
    }
    let mut lists: Vec<_> = hostile::PAGE_SIZES
        .iter()
        .map(|size| (*size, String::new()))
        .collect();
    lists.extend(hostile::page_tokens().into_iter().map(|t| (10, t)));
    for (page_size, page_token) in lists {
        let what = format!("{page_size}/{page_token:.40}");
        let err = app
            .client
            .list_articles(pb::ListArticlesRequest {
                page_size,
                page_token,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    assert_eq!(
        app.all_queries().await,
        before,
        "a refused call ran a query"
    );

    // Still serving; the largest page holds at most the maximum.
    app.create(1, "still here").await;
    let page = app
        .client
        .list_articles(pb::ListArticlesRequest {
            page_size: kit::pagination::MAX_SIZE as i32,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.articles.len(), 1);
    app.stop().await;
}

//! A client that skips the gateway and calls the comment service itself
//! gets the gateway's rules: every broken one is INVALID_ARGUMENT, answered
//! before any query (or call to the content service) runs, never a panic.

use kit::testing::hostile;
use kit::validate::COMMENT_BODY_MAX;
use proto::comment::v1 as pb;
use tonic::Code;

use crate::helpers::spawn_app;

fn comment(article_id: i64, author_id: i64, body: &str) -> pb::CreateCommentRequest {
    pb::CreateCommentRequest {
        article_id,
        author_id,
        body: body.into(),
    }
}

#[tokio::test]
async fn every_broken_rule_is_invalid_argument_before_any_query() {
    let mut app = spawn_app().await;
    let article = app.article().await;
    let before = app.all_queries().await;
    let mut creates = Vec::new();
    for id in hostile::IDS {
        creates.push(comment(id, 1, "body"));
        creates.push(comment(article, id, "body"));
    }
    creates.extend(
        hostile::texts(COMMENT_BODY_MAX)
            .iter()
            .map(|b| comment(article, 1, b)),
    );
    for request in creates {
        let what = format!(
            "{}/{}/{:.40?}",
            request.article_id, request.author_id, request.body
        );
        let err = app.client.create_comment(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    let mut lists: Vec<_> = hostile::IDS
        .iter()
        .map(|id| (*id, 10, String::new()))
        .collect();
    lists.extend(
        hostile::PAGE_SIZES
            .iter()
            .map(|size| (article, *size, String::new())),
    );
    lists.extend(hostile::page_tokens().into_iter().map(|t| (article, 10, t)));
    for (article_id, page_size, page_token) in lists {
        let what = format!("{article_id}/{page_size}/{page_token:.40}");
        let err = app
            .client
            .list_comments(pb::ListCommentsRequest {
                article_id,
                page_size,
                page_token,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    for article_ids in hostile::batches() {
        let n = article_ids.len();
        let err = app
            .client
            .count_comments(pb::CountCommentsRequest { article_ids })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "a batch of {n}");
    }
    assert_eq!(
        app.all_queries().await,
        before,
        "a refused call ran a query"
    );

    // Still serving.
    app.comment(article, "still here").await;
    app.stop().await;
}

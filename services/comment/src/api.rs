//! The `comment.v1.CommentService` handlers.

use std::collections::HashMap;

use kit::cache::{Cache, Keyspace};
use kit::client::Channel;
use kit::pagination::Page;
use kit::validate::{COMMENT_BODY_MAX, batch, positive, text};
use proto::comment::v1 as pb;
use proto::comment::v1::comment_service_server::CommentService;
use proto::content::v1::GetArticleRequest;
use proto::content::v1::content_service_client::ContentServiceClient;
use tonic::{Code, Request, Response, Status};

use crate::error::Error;
use crate::repository::{Comment, CommentRepository};

pub struct CommentApi {
    comments: CommentRepository,
    content: ContentServiceClient<Channel>,
    /// Comment counts by article; a new comment invalidates its article's.
    counts: Keyspace<i64>,
}

impl CommentApi {
    pub fn new(
        comments: CommentRepository,
        content: ContentServiceClient<Channel>,
        cache: &Cache,
    ) -> Self {
        Self {
            comments,
            content,
            counts: cache.keyspace("comment_counts"),
        }
    }

    /// Comments may only point at articles that exist; the content service
    /// owns that knowledge.
    async fn check_article(&self, id: i64) -> Result<(), Error> {
        match self
            .content
            .clone()
            .get_article(GetArticleRequest { id })
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Err(Error::ArticleNotFound(id)),
            Err(status) => Err(Error::Content(status)),
        }
    }
}

#[tonic::async_trait]
impl CommentService for CommentApi {
    async fn create_comment(
        &self,
        request: Request<pb::CreateCommentRequest>,
    ) -> Result<Response<pb::CreateCommentResponse>, Status> {
        let request = request.into_inner();
        let article_id = positive("article_id", request.article_id)?;
        let author_id = positive("author_id", request.author_id)?;
        let body = text("body", &request.body, COMMENT_BODY_MAX)?;
        self.check_article(article_id).await?;
        // Armed before the insert: a caller that goes away after the commit
        // cannot leave the old count cached.
        let comment = self
            .counts
            .invalidating(
                &[article_id],
                self.comments.insert(article_id, author_id, body),
            )
            .await?;
        tracing::info!(
            comment.id = comment.id,
            article.id = article_id,
            "comment created"
        );
        Ok(Response::new(pb::CreateCommentResponse {
            comment: Some(to_proto(comment)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let request = request.into_inner();
        let article_id = positive("article_id", request.article_id)?;
        let page = Page::request(request.page_size, &request.page_token)?;
        let mut comments = self.comments.page(article_id, &page).await?;
        let next_page_token = page.finish(&mut comments, |c| c.id);
        Ok(Response::new(pb::ListCommentsResponse {
            comments: comments.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn count_comments(
        &self,
        request: Request<pb::CountCommentsRequest>,
    ) -> Result<Response<pb::CountCommentsResponse>, Status> {
        let ids = batch("article_ids", request.into_inner().article_ids)?;
        let mut counts = self
            .counts
            .get_many_or_load(&ids, |ids| async move {
                let found = self.comments.counts(&ids).await?;
                // Zero is a count like any other: cached, not "not found".
                Ok::<_, Error>(
                    ids.into_iter()
                        .map(|id| (id, found.get(&id).copied().unwrap_or(0)))
                        .collect::<HashMap<i64, i64>>(),
                )
            })
            .await?;
        // The answer is the found map itself, not a copy: every id asked for
        // is cached or loaded (with its zero). Only a load that answered
        // for other ids than asked would need the map trimmed or filled.
        if counts.len() != ids.len() {
            counts.retain(|id, _| ids.binary_search(id).is_ok());
            for id in ids {
                counts.entry(id).or_insert(0);
            }
        }
        Ok(Response::new(pb::CountCommentsResponse { counts }))
    }
}

fn to_proto(comment: Comment) -> pb::Comment {
    pb::Comment {
        id: comment.id,
        article_id: comment.article_id,
        author_id: comment.author_id,
        body: comment.body,
        created_at: Some(kit::time::timestamp(comment.created_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comment page carries whole comments (there is nothing else to read
    /// them by), so the page bound is what keeps it decodable: the longest
    /// comments, four bytes a character, with room for ids and timestamps.
    #[test]
    fn the_largest_comment_page_fits_the_default_message_limit() {
        let per_comment = COMMENT_BODY_MAX * 4 + 64;
        let largest_page = per_comment * kit::pagination::MAX_SIZE as usize;
        let limit = kit::messages::MessageLimits::default().max_decoding_bytes;
        assert!(largest_page * 2 <= limit, "{largest_page} bytes vs {limit}");
    }
}

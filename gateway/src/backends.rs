//! Clients of the services behind the gateway, and the calls the routes
//! make: reads are retried within a budget, writes never.

use std::collections::{BTreeSet, HashMap};

use kit::client::{Channel, Clients};
use kit::messages::MessageLimits;
use kit::resilience::retry::Retry;
use proto::comment::v1::comment_service_client::CommentServiceClient;
use proto::comment::v1::{
    Comment, CountCommentsRequest, ListCommentsRequest, ListCommentsResponse,
};
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::content::v1::{Article, GetArticleRequest, ListArticlesRequest, ListArticlesResponse};
use proto::user::v1::user_service_client::UserServiceClient;
use proto::user::v1::{BatchGetUsersRequest, User};
use tonic::Status;

use crate::settings::ServiceNames;

/// One client per service. Clients are cheap to clone: calls take `&mut
/// self`, so each call clones the one it uses.
#[derive(Clone)]
pub struct Backends {
    pub user: UserServiceClient<Channel>,
    pub content: ContentServiceClient<Channel>,
    pub comment: CommentServiceClient<Channel>,
    retry: Retry,
}

impl Backends {
    pub fn new(
        clients: &Clients,
        names: &ServiceNames,
        limits: &MessageLimits,
        retry: Retry,
    ) -> Self {
        let channel = |name: &str| clients.channel(name);
        Self {
            user: kit::with_message_limits!(UserServiceClient::new(channel(&names.user)), limits),
            content: kit::with_message_limits!(
                ContentServiceClient::new(channel(&names.content)),
                limits
            ),
            comment: kit::with_message_limits!(
                CommentServiceClient::new(channel(&names.comment)),
                limits
            ),
            retry,
        }
    }

    pub async fn list_articles(
        &self,
        request: ListArticlesRequest,
    ) -> Result<ListArticlesResponse, Status> {
        self.retry
            .read(|| async {
                Ok(self
                    .content
                    .clone()
                    .list_articles(request.clone())
                    .await?
                    .into_inner())
            })
            .await
    }

    pub async fn article(&self, id: i64) -> Result<Article, Status> {
        let response = self
            .retry
            .read(|| async {
                Ok(self
                    .content
                    .clone()
                    .get_article(GetArticleRequest { id })
                    .await?
                    .into_inner())
            })
            .await?;
        response
            .article
            .ok_or_else(|| Status::internal("GetArticle answered without an article"))
    }

    pub async fn list_comments(
        &self,
        request: ListCommentsRequest,
    ) -> Result<ListCommentsResponse, Status> {
        self.retry
            .read(|| async {
                Ok(self
                    .comment
                    .clone()
                    .list_comments(request.clone())
                    .await?
                    .into_inner())
            })
            .await
    }

    /// The newest comments of an article.
    pub async fn latest_comments(&self, article_id: i64, n: i32) -> Result<Vec<Comment>, Status> {
        Ok(self
            .list_comments(ListCommentsRequest {
                article_id,
                page_size: n,
                page_token: String::new(),
            })
            .await?
            .comments)
    }

    /// The users among `ids`, by id, in one call (none for no ids).
    pub async fn users(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, User>, Status> {
        let ids: BTreeSet<i64> = ids.into_iter().collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let request = BatchGetUsersRequest {
            ids: ids.into_iter().collect(),
        };
        let users = self
            .retry
            .read(|| async {
                Ok(self
                    .user
                    .clone()
                    .batch_get_users(request.clone())
                    .await?
                    .into_inner()
                    .users)
            })
            .await?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }

    /// Comment counts of `article_ids`, in one call.
    pub async fn comment_counts(
        &self,
        article_ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, i64>, Status> {
        let request = CountCommentsRequest {
            article_ids: article_ids.into_iter().collect(),
        };
        self.retry
            .read(|| async {
                Ok(self
                    .comment
                    .clone()
                    .count_comments(request.clone())
                    .await?
                    .into_inner()
                    .counts)
            })
            .await
    }
}

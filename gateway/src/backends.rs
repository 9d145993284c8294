//! The gateway's backend layer: every call the routes make to the services,
//! reads and writes. Reads are retried within a budget, writes never (a
//! retried write could apply twice); the API models go in and come out here,
//! so handlers only shape HTTP.

use std::collections::{BTreeSet, HashMap};

use kit::client::{Channel, Clients};
use kit::messages::MessageLimits;
use kit::resilience::retry::Retry;
use proto::comment::v1::comment_service_client::CommentServiceClient;
use proto::comment::v1::{
    Comment, CountCommentsRequest, CreateCommentRequest, ListCommentsRequest, ListCommentsResponse,
};
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::content::v1::{
    Article, CreateArticleRequest, GetArticleRequest, ListArticlesRequest, ListArticlesResponse,
};
use proto::user::v1::user_service_client::UserServiceClient;
use proto::user::v1::{
    AuthenticateRequest, BatchGetUsersRequest, CreateUserRequest, GetUserRequest, User,
};
use tonic::Status;

use crate::models;
use crate::settings::ServiceNames;

// new-service: modules

/// One client per service. Clients are cheap to clone: calls take `&mut
/// self`, so each call clones the one it uses.
#[derive(Clone)]
pub struct Backends {
    user: UserServiceClient<Channel>,
    content: ContentServiceClient<Channel>,
    comment: CommentServiceClient<Channel>,
    // new-service: clients
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
            // new-service: connect
            retry,
        }
    }

    /// Registers an account.
    pub async fn create_user(&self, new: models::CreateUser) -> Result<models::User, Status> {
        let request = CreateUserRequest {
            username: new.username,
            password: new.password,
            display_name: new.display_name,
        };
        let user = self.user.clone().create_user(request).await?.into_inner();
        present(user.user, "CreateUser", "a user").map(models::User::from_proto)
    }

    /// The account with these credentials (UNAUTHENTICATED otherwise).
    pub async fn authenticate(&self, login: models::CreateSession) -> Result<User, Status> {
        let request = AuthenticateRequest {
            username: login.username,
            password: login.password,
        };
        let user = self.user.clone().authenticate(request).await?.into_inner();
        present(user.user, "Authenticate", "a user")
    }

    pub async fn user(&self, id: i64) -> Result<models::User, Status> {
        let response = self
            .retry
            .read(|| async {
                Ok(self
                    .user
                    .clone()
                    .get_user(GetUserRequest { id })
                    .await?
                    .into_inner())
            })
            .await?;
        present(response.user, "GetUser", "a user").map(models::User::from_proto)
    }

    /// Publishes an article by `author_id`.
    pub async fn create_article(
        &self,
        author_id: i64,
        new: models::CreateArticle,
    ) -> Result<models::Article, Status> {
        let request = CreateArticleRequest {
            author_id,
            title: new.title,
            body: new.body,
        };
        let article = self
            .content
            .clone()
            .create_article(request)
            .await?
            .into_inner();
        present(article.article, "CreateArticle", "an article").map(models::Article::from_proto)
    }

    /// Comments on `article_id` as `author_id`.
    pub async fn create_comment(
        &self,
        article_id: i64,
        author_id: i64,
        new: models::CreateComment,
    ) -> Result<models::Comment, Status> {
        let request = CreateCommentRequest {
            article_id,
            author_id,
            body: new.body,
        };
        let comment = self
            .comment
            .clone()
            .create_comment(request)
            .await?
            .into_inner();
        present(comment.comment, "CreateComment", "a comment").map(models::Comment::from_proto)
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
        present(response.article, "GetArticle", "an article")
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

/// A message field proto3 makes optional but the service always sets.
fn present<T>(field: Option<T>, call: &str, what: &str) -> Result<T, Status> {
    field.ok_or_else(|| Status::internal(format!("{call} answered without {what}")))
}

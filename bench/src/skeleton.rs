//! The bare skeleton: the gateway's article list, article page and comment
//! write over plain tonic, and canned-data servers for the three services. Nothing else — no discovery,
//! balancing, breakers, metrics, tracing, timeouts or storage — so its
//! throughput is what the process topology itself allows.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use proto::comment::v1::comment_service_client::CommentServiceClient;
use proto::comment::v1::comment_service_server::{CommentService, CommentServiceServer};
use proto::comment::v1::{
    Comment, CountCommentsRequest, CountCommentsResponse, CreateCommentRequest,
    CreateCommentResponse, ListCommentsRequest, ListCommentsResponse,
};
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::content::v1::content_service_server::{ContentService, ContentServiceServer};
use proto::content::v1::{
    CreateArticleRequest, CreateArticleResponse, GetArticleRequest, GetArticleResponse,
    ListArticlesRequest, ListArticlesResponse,
};
use proto::user::v1::user_service_client::UserServiceClient;
use proto::user::v1::user_service_server::{UserService, UserServiceServer};
use proto::user::v1::{
    AuthenticateRequest, AuthenticateResponse, BatchGetUsersRequest, BatchGetUsersResponse,
    CreateUserRequest, CreateUserResponse, GetUserRequest, GetUserResponse, User,
};
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response as GrpcResponse, Status};

use crate::canned;

/// One process serves all three canned services; the skeleton gateway
/// talks to each through its own process, as the platform does.
pub fn services() -> tonic::transport::server::Router {
    let data = Arc::new(Canned {
        articles: canned::articles(),
        summaries: canned::summaries(),
        users: canned::users(),
        next_comment: AtomicI64::new(1),
    });
    Server::builder()
        .add_service(ContentServiceServer::from_arc(data.clone()))
        .add_service(UserServiceServer::from_arc(data.clone()))
        .add_service(CommentServiceServer::from_arc(data))
}

struct Canned {
    articles: Vec<proto::content::v1::Article>,
    summaries: Vec<proto::content::v1::ArticleSummary>,
    users: HashMap<i64, User>,
    /// Ids of written comments (which are not kept).
    next_comment: AtomicI64,
}

#[tonic::async_trait]
impl ContentService for Canned {
    async fn create_article(
        &self,
        _: Request<CreateArticleRequest>,
    ) -> Result<GrpcResponse<CreateArticleResponse>, Status> {
        Err(Status::unimplemented("the skeleton only reads"))
    }

    async fn get_article(
        &self,
        request: Request<GetArticleRequest>,
    ) -> Result<GrpcResponse<GetArticleResponse>, Status> {
        let id = request.into_inner().id;
        let article = self.articles.iter().find(|a| a.id == id).cloned();
        match article {
            Some(article) => Ok(GrpcResponse::new(GetArticleResponse {
                article: Some(article),
            })),
            None => Err(Status::not_found("no such article")),
        }
    }

    async fn list_articles(
        &self,
        request: Request<ListArticlesRequest>,
    ) -> Result<GrpcResponse<ListArticlesResponse>, Status> {
        let size = request.into_inner().page_size.clamp(1, 100) as usize;
        Ok(GrpcResponse::new(ListArticlesResponse {
            articles: self.summaries[..size].to_vec(),
            next_page_token: "c2tlbGV0b24".into(),
        }))
    }
}

#[tonic::async_trait]
impl UserService for Canned {
    async fn create_user(
        &self,
        _: Request<CreateUserRequest>,
    ) -> Result<GrpcResponse<CreateUserResponse>, Status> {
        Err(Status::unimplemented("the skeleton only reads"))
    }

    async fn authenticate(
        &self,
        _: Request<AuthenticateRequest>,
    ) -> Result<GrpcResponse<AuthenticateResponse>, Status> {
        Err(Status::unimplemented("the skeleton only reads"))
    }

    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<GrpcResponse<GetUserResponse>, Status> {
        let user = self.users.get(&request.into_inner().id).cloned();
        Ok(GrpcResponse::new(GetUserResponse { user }))
    }

    async fn batch_get_users(
        &self,
        request: Request<BatchGetUsersRequest>,
    ) -> Result<GrpcResponse<BatchGetUsersResponse>, Status> {
        let users = request
            .into_inner()
            .ids
            .iter()
            .filter_map(|id| self.users.get(id).cloned())
            .collect();
        Ok(GrpcResponse::new(BatchGetUsersResponse { users }))
    }
}

#[tonic::async_trait]
impl CommentService for Canned {
    async fn create_comment(
        &self,
        request: Request<CreateCommentRequest>,
    ) -> Result<GrpcResponse<CreateCommentResponse>, Status> {
        let new = request.into_inner();
        let id = self.next_comment.fetch_add(1, Ordering::Relaxed);
        Ok(GrpcResponse::new(CreateCommentResponse {
            comment: Some(canned::comment(id, new.article_id, new.author_id, new.body)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<ListCommentsRequest>,
    ) -> Result<GrpcResponse<ListCommentsResponse>, Status> {
        let request = request.into_inner();
        Ok(GrpcResponse::new(ListCommentsResponse {
            comments: canned::comments(request.article_id, request.page_size),
            next_page_token: String::new(),
        }))
    }

    async fn count_comments(
        &self,
        request: Request<CountCommentsRequest>,
    ) -> Result<GrpcResponse<CountCommentsResponse>, Status> {
        let counts = request
            .into_inner()
            .article_ids
            .into_iter()
            .map(|id| (id, canned::comment_count(id)))
            .collect();
        Ok(GrpcResponse::new(CountCommentsResponse { counts }))
    }
}

/// Plain clients of the three services at fixed addresses.
#[derive(Clone)]
pub struct Clients {
    pub content: ContentServiceClient<Channel>,
    pub user: UserServiceClient<Channel>,
    pub comment: CommentServiceClient<Channel>,
}

impl Clients {
    /// Lazily connected channels, configured like the platform's endpoints.
    pub fn new(content: &str, user: &str, comment: &str) -> anyhow::Result<Self> {
        Ok(Self {
            content: ContentServiceClient::new(channel(content)?),
            user: UserServiceClient::new(channel(user)?),
            comment: CommentServiceClient::new(channel(comment)?),
        })
    }

    /// The gateway's article page: the articles, then their authors and
    /// comment counts in parallel.
    pub async fn page(&self, limit: i32) -> Result<ArticlePage, Status> {
        let page = self
            .content
            .clone()
            .list_articles(ListArticlesRequest {
                page_size: limit,
                page_token: String::new(),
            })
            .await?
            .into_inner();
        let author_ids: BTreeSet<i64> = page.articles.iter().map(|a| a.author_id).collect();
        let (mut user, mut comment) = (self.user.clone(), self.comment.clone());
        let (users, counts) = tokio::try_join!(
            user.batch_get_users(BatchGetUsersRequest {
                ids: author_ids.into_iter().collect(),
            }),
            comment.count_comments(CountCommentsRequest {
                article_ids: page.articles.iter().map(|a| a.id).collect(),
            }),
        )?;
        let users: HashMap<i64, User> = users
            .into_inner()
            .users
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let counts = counts.into_inner().counts;
        let items = page
            .articles
            .into_iter()
            .map(|a| Article {
                author: users.get(&a.author_id).map(|u| Author {
                    id: u.id,
                    username: u.username.clone(),
                    display_name: u.display_name.clone(),
                }),
                comment_count: Some(counts.get(&a.id).copied().unwrap_or(0)),
                id: a.id,
                title: a.title,
                summary: a.summary,
                created_at: rfc3339(a.created_at),
                author_id: a.author_id,
            })
            .collect();
        Ok(ArticlePage {
            items,
            next_cursor: (!page.next_page_token.is_empty()).then_some(page.next_page_token),
        })
    }

    /// The gateway's article page: the article, its latest comments and
    /// its comment count in parallel, then the authors.
    pub async fn article(&self, id: i64) -> Result<ArticleDetail, Status> {
        let (mut content, mut comment, mut counter) = (
            self.content.clone(),
            self.comment.clone(),
            self.comment.clone(),
        );
        let (article, comments, counts) = tokio::try_join!(
            content.get_article(GetArticleRequest { id }),
            comment.list_comments(ListCommentsRequest {
                article_id: id,
                page_size: LATEST_COMMENTS,
                page_token: String::new(),
            }),
            counter.count_comments(CountCommentsRequest {
                article_ids: vec![id],
            }),
        )?;
        let article = article
            .into_inner()
            .article
            .ok_or_else(|| Status::internal("no article"))?;
        let comments = comments.into_inner().comments;
        let count = counts.into_inner().counts.get(&id).copied().unwrap_or(0);
        let author_ids: BTreeSet<i64> = std::iter::once(article.author_id)
            .chain(comments.iter().map(|c| c.author_id))
            .collect();
        let users = self.users(author_ids).await?;
        Ok(ArticleDetail {
            article: Article {
                author: users.get(&article.author_id).map(Author::from),
                comment_count: Some(count),
                id: article.id,
                title: article.title,
                summary: article.body,
                created_at: rfc3339(article.created_at),
                author_id: article.author_id,
            },
            comments: comments
                .into_iter()
                .map(|c| CommentView::new(c, &users))
                .collect(),
        })
    }

    /// The gateway's comment write: the comment, then its author. There is
    /// no session to check: the skeleton writes as author 1.
    pub async fn comment(&self, article_id: i64, body: String) -> Result<CommentView, Status> {
        let comment = self
            .comment
            .clone()
            .create_comment(CreateCommentRequest {
                article_id,
                author_id: 1,
                body,
            })
            .await?
            .into_inner()
            .comment
            .ok_or_else(|| Status::internal("no comment"))?;
        let users = self.users([comment.author_id]).await?;
        Ok(CommentView::new(comment, &users))
    }

    async fn users(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, User>, Status> {
        let ids: BTreeSet<i64> = ids.into_iter().collect();
        let users = self
            .user
            .clone()
            .batch_get_users(BatchGetUsersRequest {
                ids: ids.into_iter().collect(),
            })
            .await?
            .into_inner()
            .users;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// How many comments the article page shows, as in the gateway.
const LATEST_COMMENTS: i32 = 10;

fn channel(addr: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect_lazy())
}

/// The skeleton gateway: `GET /api/v1/articles?limit=`,
/// `GET /api/v1/articles/{id}` and `POST /api/v1/articles/{id}/comments`.
pub fn gateway(clients: Clients) -> Router {
    Router::new()
        .route("/api/v1/articles", axum::routing::get(list_articles))
        .route("/api/v1/articles/{id}", axum::routing::get(get_article))
        .route(
            "/api/v1/articles/{id}/comments",
            axum::routing::post(create_comment),
        )
        .with_state(clients)
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<i32>,
}

async fn list_articles(
    State(clients): State<Clients>,
    Query(query): Query<PageQuery>,
) -> Result<Json<ArticlePage>, BadGateway> {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    Ok(Json(clients.page(limit).await.map_err(BadGateway)?))
}

async fn get_article(
    State(clients): State<Clients>,
    Path(id): Path<i64>,
) -> Result<Json<ArticleDetail>, BadGateway> {
    Ok(Json(clients.article(id).await.map_err(BadGateway)?))
}

#[derive(Deserialize)]
struct NewComment {
    body: String,
}

async fn create_comment(
    State(clients): State<Clients>,
    Path(id): Path<i64>,
    Json(new): Json<NewComment>,
) -> Result<(StatusCode, Json<CommentView>), BadGateway> {
    let comment = clients.comment(id, new.body).await.map_err(BadGateway)?;
    Ok((StatusCode::CREATED, Json(comment)))
}

struct BadGateway(Status);

impl IntoResponse for BadGateway {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.0.message() });
        (StatusCode::BAD_GATEWAY, Json(body)).into_response()
    }
}

// The same JSON shape as the gateway's `ArticlePage`.
#[derive(Serialize)]
pub struct ArticlePage {
    pub items: Vec<Article>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct Article {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub created_at: String,
    pub author_id: i64,
    pub author: Option<Author>,
    pub comment_count: Option<i64>,
}

#[derive(Serialize)]
pub struct Author {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

impl From<&User> for Author {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
        }
    }
}

// The same JSON shape as the gateway's `ArticleDetail`.
#[derive(Serialize)]
pub struct ArticleDetail {
    #[serde(flatten)]
    pub article: Article,
    pub comments: Vec<CommentView>,
}

// The same JSON shape as the gateway's `Comment`.
#[derive(Serialize)]
pub struct CommentView {
    pub id: i64,
    pub article_id: i64,
    pub body: String,
    pub created_at: String,
    pub author_id: i64,
    pub author: Option<Author>,
}

impl CommentView {
    fn new(c: Comment, users: &HashMap<i64, User>) -> Self {
        Self {
            author: users.get(&c.author_id).map(Author::from),
            id: c.id,
            article_id: c.article_id,
            body: c.body,
            created_at: rfc3339(c.created_at),
            author_id: c.author_id,
        }
    }
}

fn rfc3339(t: Option<proto::Timestamp>) -> String {
    let t = t.unwrap_or_default();
    let since_epoch = Duration::new(
        t.seconds.max(0) as u64,
        t.nanos.clamp(0, 999_999_999) as u32,
    );
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
}

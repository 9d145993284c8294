//! The `content.v1.ContentService` handlers.

use kit::pagination::Page;
use kit::validate::{positive, text};
use proto::content::v1 as pb;
use proto::content::v1::content_service_server::ContentService;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::repository::{Article, ArticleRepository};

const TITLE_MAX: usize = 200;
const BODY_MAX: usize = 100_000;
const PAGE_DEFAULT: u32 = 20;
const PAGE_MAX: u32 = 100;

pub struct ContentApi {
    articles: ArticleRepository,
}

impl ContentApi {
    pub fn new(articles: ArticleRepository) -> Self {
        Self { articles }
    }
}

#[tonic::async_trait]
impl ContentService for ContentApi {
    async fn create_article(
        &self,
        request: Request<pb::CreateArticleRequest>,
    ) -> Result<Response<pb::CreateArticleResponse>, Status> {
        let request = request.into_inner();
        let author_id = positive("author_id", request.author_id)?;
        let title = text("title", &request.title, TITLE_MAX)?;
        let body = text("body", &request.body, BODY_MAX)?;
        let article = self.articles.insert(author_id, title, body).await?;
        tracing::info!(
            article.id = article.id,
            author.id = author_id,
            "article created"
        );
        Ok(Response::new(pb::CreateArticleResponse {
            article: Some(to_proto(article)),
        }))
    }

    async fn get_article(
        &self,
        request: Request<pb::GetArticleRequest>,
    ) -> Result<Response<pb::GetArticleResponse>, Status> {
        let id = positive("id", request.into_inner().id)?;
        let article = self.articles.by_id(id).await?.ok_or(Error::NotFound(id))?;
        Ok(Response::new(pb::GetArticleResponse {
            article: Some(to_proto(article)),
        }))
    }

    async fn list_articles(
        &self,
        request: Request<pb::ListArticlesRequest>,
    ) -> Result<Response<pb::ListArticlesResponse>, Status> {
        let request = request.into_inner();
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            PAGE_DEFAULT,
            PAGE_MAX,
        )?;
        let mut articles = self.articles.page(&page).await?;
        let next_page_token = page.finish(&mut articles, |a| a.id);
        Ok(Response::new(pb::ListArticlesResponse {
            articles: articles.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }
}

fn to_proto(article: Article) -> pb::Article {
    pb::Article {
        id: article.id,
        author_id: article.author_id,
        title: article.title,
        body: article.body,
        created_at: Some(kit::time::timestamp(article.created_at)),
    }
}

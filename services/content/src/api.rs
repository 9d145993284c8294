//! The `content.v1.ContentService` handlers.

use std::collections::HashMap;

use kit::cache::{Cache, Keyspace};
use kit::pagination::Page;
use kit::validate::{ARTICLE_BODY_MAX, TITLE_MAX, positive, text};
use proto::content::v1 as pb;
use proto::content::v1::content_service_server::ContentService;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::repository::{Article, ArticleRepository, ArticleSummary};

pub struct ContentApi {
    articles: ArticleRepository,
    /// The first page of the list (what the front page shows), keyed by page
    /// size; every new article invalidates them all.
    first_pages: Keyspace<pb::ListArticlesResponse>,
}

impl ContentApi {
    pub fn new(articles: ArticleRepository, cache: &Cache) -> Self {
        Self {
            articles,
            first_pages: cache
                .keyspace("first_page")
                .with_decoded_copies(kit::pagination::MAX_SIZE as usize),
        }
    }

    async fn page(&self, page: Page) -> Result<pb::ListArticlesResponse, Error> {
        let mut articles = self.articles.page(&page).await?;
        let next_page_token = page.finish(&mut articles, |a| a.id);
        Ok(pb::ListArticlesResponse {
            articles: articles.into_iter().map(summary_to_proto).collect(),
            next_page_token,
        })
    }

    async fn first_page(&self, page: Page) -> Result<pb::ListArticlesResponse, Error> {
        let size = i64::from(page.size);
        let cached = self
            .first_pages
            .get_or_load(size, |_| async move {
                Ok::<_, Error>(HashMap::from([(size, self.page(page).await?)]))
            })
            .await?;
        match cached {
            Some(response) => Ok(response),
            // Only if the row vanished between load and answer; never cached.
            None => self.page(page).await,
        }
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
        let body = text("body", &request.body, ARTICLE_BODY_MAX)?;
        let sizes: Vec<i64> = (1..=i64::from(kit::pagination::MAX_SIZE)).collect();
        // Armed before the insert: a caller that goes away after the commit
        // cannot leave the old front page cached.
        let article = self
            .first_pages
            .invalidating(&sizes, self.articles.insert(author_id, title, body))
            .await?;
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
        let page = Page::request(request.page_size, &request.page_token)?;
        let response = match page.before {
            None => self.first_page(page).await?,
            Some(_) => self.page(page).await?,
        };
        Ok(Response::new(response))
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

fn summary_to_proto(article: ArticleSummary) -> pb::ArticleSummary {
    pb::ArticleSummary {
        id: article.id,
        author_id: article.author_id,
        title: article.title,
        summary: article.summary,
        created_at: Some(kit::time::timestamp(article.created_at)),
    }
}

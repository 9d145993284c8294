//! The `__name__.v1.__Name__Service` handlers.

use std::collections::HashMap;

use kit::cache::{Cache, Keyspace};
use kit::pagination::Page;
use kit::validate::{positive, text};
use proto::__name__::v1 as pb;
use proto::__name__::v1::__name___service_server::__Name__Service;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::repository::{__Name__, __Name__Repository};

/// Longest text, in characters (the column holds 4000 bytes of utf8mb4).
pub const TEXT_MAX: usize = 1_000;

pub struct __Name__Api {
    __names__: __Name__Repository,
    /// __Names__ by id: written once, so never stale; the TTL bounds memory.
    by_id: Keyspace<pb::__Name__>,
}

impl __Name__Api {
    pub fn new(__names__: __Name__Repository, cache: &Cache) -> Self {
        Self {
            __names__,
            by_id: cache.keyspace("__names__"),
        }
    }
}

#[tonic::async_trait]
impl __Name__Service for __Name__Api {
    async fn create___name__(
        &self,
        request: Request<pb::Create__Name__Request>,
    ) -> Result<Response<pb::Create__Name__Response>, Status> {
        let request = request.into_inner();
        let author_id = positive("author_id", request.author_id)?;
        let text = text("text", &request.text, TEXT_MAX)?;
        let created = self.__names__.insert(author_id, text).await?;
        tracing::info!(__name__.id = created.id, "__name__ created");
        Ok(Response::new(pb::Create__Name__Response {
            __name__: Some(to_proto(created)),
        }))
    }

    async fn get___name__(
        &self,
        request: Request<pb::Get__Name__Request>,
    ) -> Result<Response<pb::Get__Name__Response>, Status> {
        let id = positive("id", request.into_inner().id)?;
        let found = self
            .by_id
            .get_or_load(id, |ids| async move {
                let mut found = HashMap::new();
                for id in ids {
                    if let Some(row) = self.__names__.by_id(id).await? {
                        found.insert(id, to_proto(row));
                    }
                }
                Ok::<_, Error>(found)
            })
            .await?
            .ok_or(Error::NotFound(id))?;
        Ok(Response::new(pb::Get__Name__Response {
            __name__: Some(found),
        }))
    }

    async fn list___names__(
        &self,
        request: Request<pb::List__Names__Request>,
    ) -> Result<Response<pb::List__Names__Response>, Status> {
        let request = request.into_inner();
        let page = Page::request(request.page_size, &request.page_token)?;
        let mut rows = self.__names__.page(&page).await?;
        let next_page_token = page.finish(&mut rows, |q| q.id);
        Ok(Response::new(pb::List__Names__Response {
            __names__: rows.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }
}

fn to_proto(__name__: __Name__) -> pb::__Name__ {
    pb::__Name__ {
        id: __name__.id,
        author_id: __name__.author_id,
        text: __name__.text,
        created_at: Some(kit::time::timestamp(__name__.created_at)),
    }
}

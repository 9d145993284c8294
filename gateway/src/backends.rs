//! Clients of the services behind the gateway, and the batch lookups that
//! keep every page at a fixed number of calls.

use std::collections::{BTreeSet, HashMap};

use kit::client::Channel;
use kit::discovery::Resolver;
use kit::metrics::GrpcMetrics;
use proto::comment::v1::CountCommentsRequest;
use proto::comment::v1::comment_service_client::CommentServiceClient;
use proto::content::v1::content_service_client::ContentServiceClient;
use proto::user::v1::user_service_client::UserServiceClient;
use proto::user::v1::{BatchGetUsersRequest, User};

use crate::settings::ServiceNames;

/// One client per service. Clients are cheap to clone: calls take `&mut
/// self`, so handlers clone the one they use.
#[derive(Clone)]
pub struct Backends {
    pub user: UserServiceClient<Channel>,
    pub content: ContentServiceClient<Channel>,
    pub comment: CommentServiceClient<Channel>,
}

impl Backends {
    pub fn new(resolver: &Resolver, names: &ServiceNames, metrics: &GrpcMetrics) -> Self {
        Self {
            user: UserServiceClient::new(kit::client::channel(resolver, &names.user, metrics)),
            content: ContentServiceClient::new(kit::client::channel(
                resolver,
                &names.content,
                metrics,
            )),
            comment: CommentServiceClient::new(kit::client::channel(
                resolver,
                &names.comment,
                metrics,
            )),
        }
    }

    /// The users among `ids`, by id, in one call.
    pub async fn users(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, User>, tonic::Status> {
        let ids: BTreeSet<i64> = ids.into_iter().collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
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

    /// Comment counts of `article_ids`, in one call.
    pub async fn comment_counts(
        &self,
        article_ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, i64>, tonic::Status> {
        Ok(self
            .comment
            .clone()
            .count_comments(CountCommentsRequest {
                article_ids: article_ids.into_iter().collect(),
            })
            .await?
            .into_inner()
            .counts)
    }
}

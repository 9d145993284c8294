//! The `user.v1.UserService` handlers.

use std::collections::HashMap;

use proto::user::v1 as pb;
use proto::user::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};

use kit::cache::{Cache, Keyspace};
use kit::validate::{batch, positive};

use crate::domain::{DisplayName, Password, Username};
use crate::error::Error;
use crate::password::Hasher;
use crate::repository::{User, UserRepository};

pub struct UserApi {
    users: UserRepository,
    hasher: Hasher,
    /// Public profiles by id. Users never change after sign-up, so the only
    /// write to follow is the sign-up itself.
    cached: Keyspace<pb::User>,
}

impl UserApi {
    pub fn new(users: UserRepository, hasher: Hasher, cache: &Cache) -> Self {
        Self {
            users,
            hasher,
            cached: cache.keyspace("users"),
        }
    }

    /// The users among `ids`: cached ones from one multi-get, the rest from
    /// one query.
    async fn users(&self, ids: &[i64]) -> Result<HashMap<i64, pb::User>, Error> {
        self.cached
            .get_many_or_load(ids, |ids| async move {
                let users = match ids[..] {
                    [id] => self.users.by_id(id).await?.into_iter().collect(),
                    _ => self.users.by_ids(&ids).await?,
                };
                Ok(users.into_iter().map(|u| (u.id, to_proto(u))).collect())
            })
            .await
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let request = request.into_inner();
        let username = Username::parse(&request.username)?;
        let display_name = DisplayName::parse(&request.display_name, &username)?;
        let password = Password::parse(request.password)?;
        let hash = self.hasher.hash(password).await?;
        let user = to_proto(self.users.insert(&username, &display_name, &hash).await?);
        tracing::info!(user.id = user.id, "user created");
        // Replaces a cached "no such user" for this id, if any.
        self.cached.put(user.id, &user).await;
        Ok(Response::new(pb::CreateUserResponse { user: Some(user) }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let request = request.into_inner();
        // Malformed input is a failed login, not a validation error: the
        // answer must not tell which part was wrong.
        let (Ok(username), Ok(password)) = (
            Username::parse(&request.username),
            Password::parse(request.password),
        ) else {
            return Err(Error::BadCredentials.into());
        };
        let credentials = self.users.credentials(&username).await?;
        let (user, hash) = match credentials {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        match (self.hasher.verify(password, hash).await?, user) {
            (true, Some(user)) => Ok(Response::new(pb::AuthenticateResponse {
                user: Some(to_proto(user)),
            })),
            _ => Err(Error::BadCredentials.into()),
        }
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id = positive("id", request.into_inner().id)?;
        let user = self
            .users(&[id])
            .await?
            .remove(&id)
            .ok_or(Error::NotFound(id))?;
        Ok(Response::new(pb::GetUserResponse { user: Some(user) }))
    }

    async fn batch_get_users(
        &self,
        request: Request<pb::BatchGetUsersRequest>,
    ) -> Result<Response<pb::BatchGetUsersResponse>, Status> {
        let ids = batch("ids", request.into_inner().ids)?;
        let mut users: Vec<pb::User> = self.users(&ids).await?.into_values().collect();
        users.sort_by_key(|u| u.id);
        Ok(Response::new(pb::BatchGetUsersResponse { users }))
    }
}

fn to_proto(user: User) -> pb::User {
    pb::User {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        created_at: Some(kit::time::timestamp(user.created_at)),
    }
}

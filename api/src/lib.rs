//! Parley's HTTP API: the write side (commands on event-sourced aggregates) and queries on the
//! read models that `parley-projections` maintains.

pub mod app;
pub mod auth;
pub mod calls;
pub mod chats;
pub mod commands;
pub mod config;
pub mod error;
pub mod keys;
pub mod media;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod realtime;
pub mod state;
pub mod text;
pub mod users;
pub mod web;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Accounts and sessions
    Auth,
    /// Profiles
    Users,
    /// Chats, groups and messages
    Chats,
    /// Voice and video calls
    Calls,
    /// Photos, videos and profile pictures
    Media,
    /// Notifications
    Notifications,
    /// End-to-end encryption: devices, their keys, and to-device messages
    Keys,
    /// Health, metrics and keys
    Operations,
}

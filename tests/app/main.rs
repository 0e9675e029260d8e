//! The site's behaviour, end to end through Rocket's local client, one fresh database per test.

mod helpers;

mod account;
mod admin;
mod cli;
mod health;
mod keys;
mod logging;
mod login;
mod pages;
mod sessions;
mod signup;
mod tokens;

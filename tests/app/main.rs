//! The site's behaviour, end to end through Rocket's local client, one fresh database per test.

mod helpers;

// The real SMTP server the mail tests send to (shared with tests/browser).
#[allow(dead_code)]
#[path = "../common/smtp.rs"]
mod smtp;

mod account;
mod account_deletion;
mod admin;
mod admin_mail;
mod api;
mod audit;
mod claims;
mod cli;
mod contract;
mod csrf;
mod data_export;
mod devices;
mod email_change;
mod email_verification;
mod forwarder;
mod headers;
mod health;
mod html;
mod invitations;
mod jwks;
mod key_lifecycle;
#[cfg(unix)]
mod key_reload_signal;
mod keys;
mod layers;
mod lockout;
mod logging;
mod login;
mod mail;
mod migrations;
mod notices;
mod openapi;
mod outage;
mod pages;
mod passkeys;
mod password_hashing;
mod password_reset;
mod refresh;
mod security_overview;
mod sessions;
mod sign_out_elsewhere;
mod signup;
mod smtp_server;
mod sudo;
mod tokens;
mod transactions;
mod two_factor;
mod two_factor_at_rest;

//! Table definitions, matching `migrations/sqlite` and `migrations/postgres`.

diesel::table! {
    /// People who can sign in.
    users (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        email_verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One row per sign-in (browser or API client).
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        remember -> Bool,
        user_agent -> Text,
        ip -> Text,
        revoked_at -> Nullable<Timestamp>,
        two_factor -> Bool,
        stolen -> Bool,
        authenticated_at -> Nullable<Timestamp>,
        passkey -> Bool,
    }
}

diesel::table! {
    /// Failed sign-ins per account (or per unknown name), shared by every instance.
    login_attempts (login_key) {
        login_key -> Text,
        failures -> Integer,
        lockouts -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_failure_at -> Timestamp,
    }
}

diesel::table! {
    /// Append-only record of security events.
    audit_events (id) {
        id -> BigInt,
        at -> Timestamp,
        kind -> Text,
        actor_id -> Nullable<Text>,
        actor -> Nullable<Text>,
        subject_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    /// Keys that services exchange for short-lived tokens; only a hash is stored.
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        scope -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// An authenticator app set up (or being set up) for a user.
    two_factor (user_id) {
        user_id -> Text,
        secret -> Text,
        created_at -> Timestamp,
        enabled_at -> Nullable<Timestamp>,
        last_step -> BigInt,
    }
}

diesel::table! {
    /// Single-use recovery codes (hashed) for users with two-factor sign-in.
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        issued_at -> Timestamp,
        superseded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    trusted_devices (nonce) {
        nonce -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        failures -> Integer,
        window_start -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rate_counters (kind, address, window_start) {
        kind -> Text,
        address -> Text,
        window_start -> BigInt,
        hits -> Integer,
    }
}

diesel::table! {
    /// Mail waiting to be sent (body sealed), and a record of mail sent.
    outbox (id) {
        id -> Text,
        kind -> Text,
        user_id -> Nullable<Text>,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    /// Single-use links (resets, verification, email change and undo, invitations); hashes only.
    account_tokens (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        email -> Nullable<Text>,
        role -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Sessions of deleted accounts, kept for the revocation list until they would have expired.
    ended_sessions (id) {
        id -> Text,
        expires_at -> Timestamp,
        ended_at -> Timestamp,
    }
}

diesel::table! {
    /// Passkeys (WebAuthn credentials): webauthn-rs's record as JSON, by credential id.
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Passkey ceremonies between their two steps: five minutes, one use.
    passkey_ceremonies (id) {
        id -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(trusted_devices -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(two_factor -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    login_attempts,
    audit_events,
    api_keys,
    two_factor,
    recovery_codes,
    trusted_devices,
    rate_counters,
    outbox,
    account_tokens,
    ended_sessions,
    passkeys,
    passkey_ceremonies
);

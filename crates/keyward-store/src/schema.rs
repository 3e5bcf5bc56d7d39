//! Diesel table definitions, shared by SQLite and PostgreSQL (see `migrations/`).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_verified -> Bool,
        name -> Nullable<Text>,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        email_sign_in -> Bool,
        passkey_offer_declined_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key_encrypted -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        activates_at -> BigInt,
        unpublish_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Text,
        browser_hash -> Text,
        request_json -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        completed_at -> Nullable<BigInt>,
        approval_number -> Nullable<Integer>,
        approved_at -> Nullable<BigInt>,
        offer_session_hash -> Nullable<Text>,
        approved_challenge_id -> Nullable<Text>,
        approved_email -> Nullable<Text>,
    }
}

diesel::table! {
    email_challenges (id) {
        id -> Text,
        attempt_id -> Text,
        email -> Text,
        code_hash -> Text,
        failed_tries -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        link_hash -> Nullable<Text>,
        delivery -> Text,
        requested_from -> Text,
    }
}

diesel::table! {
    passkeys (credential_id) {
        credential_id -> Text,
        user_id -> Text,
        passkey_json -> Text,
        name -> Text,
        backup_eligible -> Bool,
        backup_state -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        kind -> Text,
        user_id -> Nullable<Text>,
        attempt_id -> Nullable<Text>,
        state_json -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        window_start -> BigInt,
        hits -> Integer,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        user_id -> Text,
        session_hash -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> BigInt,
        amr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        claims -> Text,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        kind -> Text,
        user_id -> Nullable<Text>,
        detail -> Text,
        client_addr -> Nullable<Text>,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        session_hash -> Nullable<Text>,
        scope -> Text,
        claims -> Text,
        auth_time -> BigInt,
        amr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        uri -> Text,
        logout_token -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        given_up_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    client_assertion_jtis (jti_hash) {
        jti_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(grants -> users (user_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(consents -> users (user_id));
diesel::table! {
    /// One row `/readyz` writes, so readiness fails when writes do.
    readiness_probe (id) {
        id -> Integer,
        checked_at -> BigInt,
    }
}

diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    signing_keys,
    login_attempts,
    email_challenges,
    passkeys,
    webauthn_ceremonies,
    rate_limits,
    sessions,
    authorization_codes,
    recovery_codes,
    audit_events,
    grants,
    refresh_tokens,
    revoked_tokens,
    consents,
    logout_deliveries,
    client_assertion_jtis,
    readiness_probe
);

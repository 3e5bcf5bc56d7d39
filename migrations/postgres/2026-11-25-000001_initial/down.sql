DROP TABLE authorization_codes;
DROP TABLE sessions;
DROP TABLE email_challenges;
DROP TABLE login_attempts;
DROP TABLE signing_keys;
DROP TABLE users;

-- two_factor.secret now holds `v1.<kid>.<base64url(nonce || ciphertext)>`: the TOTP secret
-- encrypted with XChaCha20-Poly1305 under a key derived from the signing keyring (purpose
-- "totp-secret"), the user id bound as associated data. SQL has no key, so no row changes here:
-- latchkey encrypts rows still in plain text (no `v1.` prefix) when it starts, and re-encrypts
-- them under the active key whenever its keys are loaded or reloaded. The column is TEXT (no
-- length limit), so the longer value fits as it is.
COMMENT ON COLUMN two_factor.secret IS
    'v1.<kid>.<base64url(nonce||ciphertext)>: XChaCha20-Poly1305, key derived from the keyring (totp-secret), user id as associated data';

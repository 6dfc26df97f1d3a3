/**
 * How a repository protects its objects (see sealer.ts for the byte layouts):
 * - `repokey`: encrypted and authenticated; the key material is stored in the
 *   repository, sealed with a passphrase (key-envelope.ts).
 * - `keyfile`: the same, but the sealed key material lives in a local file.
 * - `authenticated`: stored in clear, authenticated with HMAC-SHA256; chunk
 *   ids are keyed too, so stored ids reveal no plaintext fingerprints.
 * - `none`: stored in clear with a checksum that detects damage, not
 *   tampering; ids are plain SHA-256.
 */
export type EncryptionMode = 'repokey' | 'keyfile' | 'authenticated' | 'none'


/**
 * The largest argon2id costs this provider accepts: for new hashes (ARGON2_MEMORY_KIB and
 * ARGON2_ITERATIONS, idp/settings.ts) and in a stored hash before it is verified
 * (interactions/methods/password.ts). Apart, so that reading the settings loads no hashing code.
 */
export const ARGON2_MAX_MEMORY_KIB = 4 * 1024 * 1024;
export const ARGON2_MAX_ITERATIONS = 100;

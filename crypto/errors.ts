/**
 * Errors of the crypto layer. Callers switch on `code`, never on message text.
 * Messages never contain key material.
 */
export type CryptoErrorCode =
  | 'ERR_OBJECT_FORMAT'
  | 'ERR_OBJECT_AUTH'
  | 'ERR_OBJECT_KEY'
  | KeyringErrorCode
  | 'ERR_SLOT_OPEN'
  | 'ERR_NETWORK_SECRET_UNAVAILABLE'
  | 'ERR_NETWORK_SECRET_ABSENT'
  | 'ERR_KEYRING_LOCKED';

/**
 * A keyring or key file problem: `ERR_KEYRING` (unreadable or malformed),
 * `ERR_KEYRING_MISSING` (no keyring: the user is not enrolled),
 * `ERR_KEYRING_EXISTS` (enrolling twice), `ERR_KEYRING_TAKEOUT` (slot T cannot
 * be added), `ERR_KEY_FILE` (a PEM key file is unreadable or of the wrong kind).
 */
export type KeyringErrorCode = 'ERR_KEYRING' | 'ERR_KEYRING_MISSING' | 'ERR_KEYRING_EXISTS' | 'ERR_KEYRING_TAKEOUT' | 'ERR_KEY_FILE';

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  constructor(code: CryptoErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The bytes are not an object of a format this code reads (bad magic, version, length). */
export class ObjectFormatError extends CryptoError {
  constructor(message: string) {
    super('ERR_OBJECT_FORMAT', message);
  }
}

/** Authentication failed: the object was tampered with, truncated, reordered or mixed with another. */
export class ObjectAuthError extends CryptoError {
  constructor(message = 'object authentication failed: the data was modified, truncated or reordered') {
    super('ERR_OBJECT_AUTH', message);
  }
}

/** The object was sealed under a different data key than the one offered. */
export class ObjectKeyError extends CryptoError {
  constructor(message: string) {
    super('ERR_OBJECT_KEY', message);
  }
}

/** A keyring file is missing, unreadable or malformed. */
export class KeyringError extends CryptoError {
  constructor(message: string, code: KeyringErrorCode = 'ERR_KEYRING') {
    super(code, message);
  }
}

/** No slot of the keyring could be opened with what was offered. */
export class SlotOpenError extends CryptoError {
  constructor(message: string) {
    super('ERR_SLOT_OPEN', message);
  }
}

/**
 * The network secret source cannot provide K_dir. `ERR_NETWORK_SECRET_ABSENT`:
 * the source answered that it holds none for this user (revoked, not
 * enrolled, or hidden by the directory's ACL); `ERR_NETWORK_SECRET_UNAVAILABLE`:
 * it could not be asked (unreachable, refused the service account, ...).
 * The message is shown to the user whose vault does not open: no server paths in it.
 */
export class NetworkSecretUnavailableError extends CryptoError {
  constructor(message: string, code: 'ERR_NETWORK_SECRET_UNAVAILABLE' | 'ERR_NETWORK_SECRET_ABSENT' = 'ERR_NETWORK_SECRET_UNAVAILABLE') {
    super(code, message);
  }
}

/** The keyring is locked: its keys were dropped from memory. */
export class KeyringLockedError extends CryptoError {
  constructor(message = 'the keyring is locked: keys were dropped from memory') {
    super('ERR_KEYRING_LOCKED', message);
  }
}

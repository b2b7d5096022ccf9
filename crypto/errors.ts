/**
 * Errors of the crypto layer. Callers switch on `code`, never on message text.
 * Messages never contain key material.
 */
export class CryptoError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
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
  constructor(message: string, code = 'ERR_KEYRING') {
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
 * The network secret source cannot provide K_dir (directory unreachable, secret deleted, ...).
 * The message is shown to the user whose vault does not open: no server paths in it.
 */
export class NetworkSecretUnavailableError extends CryptoError {
  constructor(message: string) {
    super('ERR_NETWORK_SECRET_UNAVAILABLE', message);
  }
}

/** The keyring is locked: its keys were dropped from memory. */
export class KeyringLockedError extends CryptoError {
  constructor(message = 'the keyring is locked: keys were dropped from memory') {
    super('ERR_KEYRING_LOCKED', message);
  }
}

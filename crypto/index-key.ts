/**
 * The key of a vault's index database (docs/format.md §3.2), derived from the
 * user's DEK: HKDF-SHA-256(ikm = DEK, salt = DEK id, info = INDEX_KEY_INFO),
 * 32 bytes, handed to SQLite3 Multiple Ciphers as hex ("raw:" key).
 */
import { hkdfSync } from 'node:crypto';
import type { DataKey } from './object-format.js';

const INDEX_KEY_INFO = Buffer.from('mydoc vault v1 index key');

/** The index key as 64 hex characters; the raw bytes are zeroed before it returns. */
export function indexKeyHex(dek: DataKey): string {
  const raw = Buffer.from(hkdfSync('sha256', dek.key, dek.id, INDEX_KEY_INFO, 32));
  const hex = raw.toString('hex');
  raw.fill(0);
  return hex;
}

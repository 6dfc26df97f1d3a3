/**
 * Where a repository's key lives and how it is unlocked.
 *
 * repokey and authenticated: `keys/repokey` inside the repository, sealed
 * with the passphrase. keyfile: `<config dir>/keys/<repository id>`, so the
 * repository alone is useless without the user's machine. none: no key.
 */
import { promises as fs } from 'node:fs'
import * as path from 'node:path'
import { CairnError } from '../errors.js'
import type { Backend } from '../storage/backend.js'
import type { EncryptionMode } from '../crypto/modes.js'
import type { KeyMaterial } from '../crypto/key-material.js'
import { openKeyMaterial, sealKeyMaterial } from '../crypto/key-envelope.js'
import type { KdfParams } from '../crypto/kdf.js'

export const REPOKEY_KEY = 'keys/repokey'

/** A passphrase, or a function that produces one on demand (prompt, command). */
export type PassphraseSource = string | (() => Promise<string>)

/** Opens a key envelope (key-envelope.ts) of the repository with this id. */
export type KeyUnlocker = (envelope: Buffer, repoId: string) => Promise<KeyMaterial>

/** Unlocks with a passphrase, running the KDF in this process. */
export function unlockWithPassphrase(passphrase: PassphraseSource): KeyUnlocker {
  return async (envelope, repoId) => openKeyMaterial(envelope, typeof passphrase === 'string' ? passphrase : await passphrase(), repoId)
}

export interface KeyLocation {
  mode: EncryptionMode
  backend: Backend
  repoId: string
  configDir: string
}

export function keyfilePath(configDir: string, repoId: string): string {
  return path.join(configDir, 'keys', repoId)
}

export async function storeKey(where: KeyLocation, km: KeyMaterial, passphrase: string, kdf?: Partial<KdfParams>): Promise<void> {
  const envelope = await sealKeyMaterial(km, passphrase, where.repoId, kdf)
  if (where.mode === 'keyfile') {
    const file = keyfilePath(where.configDir, where.repoId)
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
    await fs.writeFile(file, envelope, { mode: 0o600, flag: 'wx' })
  } else {
    await where.backend.put(REPOKEY_KEY, envelope)
  }
}

export async function loadKey(where: KeyLocation, unlock: KeyUnlocker): Promise<KeyMaterial | null> {
  const envelope = await readKeyEnvelope(where)
  return envelope === null ? null : unlock(envelope, where.repoId)
}

/** The sealed key a passphrase opens (key-envelope.ts), or null in mode none. */
export async function readKeyEnvelope(where: KeyLocation): Promise<Buffer | null> {
  if (where.mode === 'none') return null
  if (where.mode !== 'keyfile') return where.backend.get(REPOKEY_KEY)
  const file = keyfilePath(where.configDir, where.repoId)
  try {
    return await fs.readFile(file)
  } catch {
    throw new CairnError('bad-config', `the key file for repository ${where.repoId.slice(0, 16)}… is not in ${path.dirname(file)}`, {
      hint: 'copy the key file there (or set CAIRN_CONFIG_DIR to where it is)',
    })
  }
}

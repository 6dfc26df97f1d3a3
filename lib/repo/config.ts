/**
 * The repository's `config` object: the only plain-text file in a
 * repository. It says what the repository is and how to read it; nothing in
 * it is secret. Layout in lib/FORMAT.md.
 */
import { CairnError } from '../errors.js'
import type { EncryptionMode } from '../crypto/modes.js'
import { DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from '../chunker/fastcdc.js'

export const FORMAT_NAME = 'cairn-repository'
export const FORMAT_VERSION = 1
/** Packs are closed once they pass this size (a pack never splits a blob). */
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024

export interface RepositoryConfig {
  format: typeof FORMAT_NAME
  version: number
  id: string
  encryption: EncryptionMode
  chunker: ChunkerParams
  packSize: number
  /** Only for mode 'none', where there is no key: the chunker seed in hex. */
  publicChunkerSeed?: string
}

const MODES: readonly EncryptionMode[] = ['repokey', 'keyfile', 'authenticated', 'none']

export function encodeConfig(config: RepositoryConfig): Buffer {
  return Buffer.from(JSON.stringify(config, null, 2) + '\n')
}

export function decodeConfig(raw: Buffer, location: string): RepositoryConfig {
  let value: unknown
  try {
    value = JSON.parse(raw.toString('utf8'))
  } catch {
    throw notARepository(location)
  }
  const c = value as Partial<RepositoryConfig>
  if (typeof c !== 'object' || c === null || c.format !== FORMAT_NAME) throw notARepository(location)
  if (c.version !== FORMAT_VERSION) {
    throw new CairnError('unsupported-version', `${location} is a cairn repository of format version ${String(c.version)}, this cairn reads version ${FORMAT_VERSION}`, {
      hint: 'use a cairn release that supports that version',
    })
  }
  if (typeof c.id !== 'string' || !/^[0-9a-f]{64}$/.test(c.id) || !MODES.includes(c.encryption as EncryptionMode)
    || typeof c.packSize !== 'number' || c.packSize < 1024 * 1024 || c.packSize > 1024 * 1024 * 1024 || !c.chunker) {
    throw new CairnError('integrity', `the config of repository ${location} is malformed`, { hint: 'restore the config file from a copy of the repository' })
  }
  validateChunkerParams(c.chunker)
  return c as RepositoryConfig
}

export function newConfig(id: string, encryption: EncryptionMode, chunker: ChunkerParams = DEFAULT_CHUNKER_PARAMS, publicChunkerSeed?: string): RepositoryConfig {
  validateChunkerParams(chunker)
  return { format: FORMAT_NAME, version: FORMAT_VERSION, id, encryption, chunker, packSize: DEFAULT_PACK_SIZE, ...(publicChunkerSeed ? { publicChunkerSeed } : {}) }
}

function notARepository(location: string): CairnError {
  return new CairnError('not-a-repository', `${location} is not a cairn repository`, {
    hint: 'check the path, or create one with: cairn init REPO',
  })
}

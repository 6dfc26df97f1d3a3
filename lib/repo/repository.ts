/**
 * A repository: its config, key, chunk index and manifest, and the calls to
 * read blobs. Writing goes through RepositoryWriter (writer.ts).
 *
 * Readers never lock: the manifest names only committed archives, and
 * everything it references was written before it.
 */
import { randomBytes } from 'node:crypto'
import * as path from 'node:path'
import { CairnError } from '../errors.js'
import type { Backend } from '../storage/backend.js'
import { LocalBackend } from '../storage/local.js'
import type { EncryptionMode } from '../crypto/modes.js'
import { generateKeyMaterial, type KeyMaterial } from '../crypto/key-material.js'
import { makeSealer, type Sealer } from '../crypto/sealer.js'
import { makeIdHasher } from '../crypto/chunk-id.js'
import type { KdfParams } from '../crypto/kdf.js'
import { decodePayload } from '../compress/codec.js'
import type { ChunkerParams } from '../chunker/fastcdc.js'
import { decodeConfig, encodeConfig, newConfig, type RepositoryConfig } from './config.js'
import { loadKey, readKeyEnvelope, storeKey, unlockWithPassphrase, type KeyUnlocker, type PassphraseSource } from './keys.js'
import { CHUNKS_CACHE, readIndexCache, syncIndex, type IndexState } from './index-cache.js'
import { readManifest, writeManifest, type ArchiveRef } from './manifest.js'
import { breakLock, RepositoryLock, type LockOptions } from './lock.js'
import { blobAad, type BlobType } from './blob.js'
import { packKey } from './pack-table.js'

export const CONFIG_KEY = 'config'

export interface RepositoryOptions {
  /** A directory path, or any Backend. */
  location: string | Backend
  passphrase?: PassphraseSource
  /**
   * Opens the key instead of `passphrase`: a caller may run the memory-hard
   * KDF somewhere else. The mount's detaching parent does, so that the
   * long-lived mount process never holds the KDF's 64 MiB.
   */
  unlockKey?: KeyUnlocker
  /** Where keyfile-mode keys live (CLI default: ~/.config/cairn). */
  configDir: string
  /** Where the chunk index and files caches live (CLI default: ~/.cache/cairn); null keeps nothing on disk. */
  cacheDir: string | null
  signal?: AbortSignal
  /**
   * Reads the local chunk index cache while the passphrase's KDF runs, for
   * callers that will need the index (mount, create, extract): the two
   * overlap instead of adding up before the first read. 'lookups': the
   * caller will mostly look blobs up, not add them (a mount), so the index
   * stays in the cache file and blobs are looked up there (IndexFile: 0.25
   * bytes of memory a blob, where a table in memory takes about 100); a
   * writer started on it loads the table.
   */
  preloadIndex?: boolean | 'lookups'
}

export interface InitOptions extends RepositoryOptions {
  encryption: EncryptionMode
  chunker?: ChunkerParams
  kdf?: Partial<KdfParams>
}

export class Repository {
  private indexState: Promise<IndexState> | null = null
  /** The local index cache read ahead by open({ preloadIndex }), until index() takes it. */
  private preloadedIndex: Promise<IndexState | null> | null = null
  /** Opened with preloadIndex 'lookups': the index stays in the cache file, refreshes included. */
  private lookupsOnly = false

  private constructor(
    readonly backend: Backend,
    readonly config: RepositoryConfig,
    /** Null in mode 'none'. */
    readonly keyMaterial: KeyMaterial | null,
    readonly chunkerSeed: Buffer,
    readonly sealer: Sealer,
    readonly idOf: (data: Uint8Array) => Buffer,
    /** This repository's own folder under the cache dir, or null. */
    readonly cacheDir: string | null,
  ) {}

  get id(): string {
    return this.config.id
  }

  get encryption(): EncryptionMode {
    return this.config.encryption
  }

  static async init(options: InitOptions): Promise<Repository> {
    const backend = toBackend(options.location)
    if (await backend.stat(CONFIG_KEY)) {
      throw new CairnError('repository-exists', `${backend.location} already holds a cairn repository`, { hint: 'choose another path' })
    }
    for await (const _ of backend.list('')) {
      throw new CairnError('bad-argument', `${backend.location} exists and is not empty`, { hint: 'give a new or empty directory' })
    }
    const id = randomBytes(32).toString('hex')
    const mode = options.encryption
    let km: KeyMaterial | null = null
    let config: RepositoryConfig
    if (mode === 'none') {
      config = newConfig(id, mode, options.chunker, randomBytes(32).toString('hex'))
    } else {
      if (options.passphrase === undefined) throw new CairnError('no-passphrase', 'a passphrase is needed to create an encrypted repository', { hint: 'set CAIRN_PASSPHRASE' })
      const secret = typeof options.passphrase === 'string' ? options.passphrase : await options.passphrase()
      km = generateKeyMaterial()
      config = newConfig(id, mode, options.chunker)
      await storeKey({ mode, backend, repoId: id, configDir: options.configDir }, km, secret, options.kdf)
    }
    // The config goes last: a directory without it is not yet a repository.
    await backend.put(CONFIG_KEY, encodeConfig(config))
    return Repository.assemble(backend, config, km, options.cacheDir)
  }

  /**
   * The repository's id and the sealed key its passphrase opens, read without opening it (null in mode
   * none): for a process that unlocks the key on behalf of another (cairn mount's parent, see
   * cli/commands/mount.ts).
   */
  static async keyEnvelope(location: string | Backend, configDir: string): Promise<{ repoId: string; envelope: Buffer } | null> {
    const backend = toBackend(location)
    const config = await readConfig(backend)
    const envelope = await readKeyEnvelope({ mode: config.encryption, backend, repoId: config.id, configDir })
    return envelope === null ? null : { repoId: config.id, envelope }
  }

  /** Removes the repository's lock, whoever holds it (`cairn break-lock`). Needs no key. */
  static async breakLock(location: string | Backend): Promise<boolean> {
    const backend = toBackend(location)
    await readConfig(backend)
    return breakLock(backend)
  }

  static async open(options: RepositoryOptions): Promise<Repository> {
    const backend = toBackend(options.location)
    const config = await readConfig(backend)
    // Never rejects (a bad cache reads as null); the index cache holds no secrets.
    const preloaded = options.preloadIndex && options.cacheDir !== null ? readIndexCache(path.join(options.cacheDir, config.id, CHUNKS_CACHE), config.id, options.preloadIndex === 'lookups') : null
    let km: KeyMaterial | null = null
    if (config.encryption !== 'none') {
      const unlock = options.unlockKey ?? (options.passphrase !== undefined ? unlockWithPassphrase(options.passphrase) : null)
      if (unlock === null) throw new CairnError('no-passphrase', `a passphrase is needed to open ${backend.location}`, { hint: 'set CAIRN_PASSPHRASE or CAIRN_PASSCOMMAND' })
      km = await loadKey({ mode: config.encryption, backend, repoId: config.id, configDir: options.configDir }, unlock)
    }
    const repo = Repository.assemble(backend, config, km, options.cacheDir)
    repo.preloadedIndex = preloaded
    repo.lookupsOnly = options.preloadIndex === 'lookups'
    return repo
  }

  private static assemble(backend: Backend, config: RepositoryConfig, km: KeyMaterial | null, cacheRoot: string | null): Repository {
    const seed = km ? km.chunkerSeed : Buffer.from(config.publicChunkerSeed ?? '', 'hex')
    if (seed.length !== 32) throw new CairnError('integrity', `the config of ${backend.location} has no valid chunker seed`, { hint: 'run cairn check' })
    const cacheDir = cacheRoot === null ? null : path.join(cacheRoot, config.id)
    return new Repository(backend, config, km, seed, makeSealer(config.encryption, km), makeIdHasher(config.encryption, km), cacheDir)
  }

  /** The archives, oldest first, as the manifest says now. */
  async archives(): Promise<ArchiveRef[]> {
    const list = await readManifest(this.backend, this.sealer)
    return list.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0))
  }

  async findArchive(name: string): Promise<ArchiveRef> {
    const found = (await this.archives()).find((a) => a.name === name)
    if (!found) throw new CairnError('archive-not-found', `there is no archive named ${JSON.stringify(name)} in ${this.backend.location}`, { hint: 'list the archives with: cairn list REPO' })
    return found
  }

  /** The chunk index, synced from the repository on first use. */
  index(signal?: AbortSignal): Promise<IndexState> {
    return this.syncedIndex(signal, this.lookupsOnly)
  }

  /**
   * Re-reads index objects written since the last sync (another client
   * committed). `inMemory`: a writer's, which needs the table in memory
   * (to add to it) even in a repository opened for lookups. Otherwise a
   * state that looks blobs up in the cache file is brought up to date as
   * it is, without reading the file again.
   */
  async refreshIndex(signal?: AbortSignal, inMemory = false): Promise<IndexState> {
    const current = this.indexState
    this.indexState = null
    const lookups = this.lookupsOnly && !inMemory
    const reused = lookups && current ? current.catch(() => null) : undefined
    const state = await this.syncedIndex(signal, lookups, reused)
    // A state read for lookups that a table in memory replaces lets its file go.
    if (!lookups && current) await (await current.catch(() => null))?.close()
    return state
  }

  private syncedIndex(signal: AbortSignal | undefined, lookups: boolean, current?: Promise<IndexState | null>): Promise<IndexState> {
    const cached = current ?? this.preloadedIndex ?? undefined
    this.preloadedIndex = null
    this.indexState ??= syncIndex(this.backend, this.sealer, this.id, this.cacheFile(CHUNKS_CACHE), signal, cached, lookups).catch((err: unknown) => {
      this.indexState = null
      throw err
    })
    return this.indexState
  }

  cacheFile(name: string): string | null {
    return this.cacheDir === null ? null : path.join(this.cacheDir, name)
  }

  /** The stored (sealed) bytes of a blob and its raw length. */
  async loadSealedBlob(id: Uint8Array): Promise<{ sealed: Buffer; rawLength: number }> {
    let state = await this.index()
    let loc = await state.locate(id)
    if (!loc) {
      state = await this.refreshIndex()
      loc = await state.locate(id)
    }
    if (!loc) {
      throw new CairnError('missing-object', `blob ${Buffer.from(id).toString('hex').slice(0, 16)}… is not in the index of ${this.backend.location}`, { hint: 'the repository is damaged; run cairn check' })
    }
    const sealed = await this.backend.getRange(packKey(state.packs.idOf(loc.pack)), loc.offset, loc.length)
    return { sealed, rawLength: loc.rawLength }
  }

  /** Opens a sealed blob: authenticates it against its type and id, then decompresses. */
  openBlob(type: BlobType, id: Uint8Array, sealed: Uint8Array, rawLength: number): Buffer {
    return decodePayload(this.sealer.open(blobAad(type, id), sealed), rawLength)
  }

  /** As openBlob, but may decrypt in place: `sealed` must be the caller's own buffer, used once. */
  openBlobInPlace(type: BlobType, id: Uint8Array, sealed: Buffer, rawLength: number): Buffer {
    return decodePayload(this.sealer.openInPlace(blobAad(type, id), sealed), rawLength)
  }

  async loadBlob(type: BlobType, id: Uint8Array): Promise<Buffer> {
    const { sealed, rawLength } = await this.loadSealedBlob(id)
    return this.openBlob(type, id, sealed, rawLength)
  }

  /**
   * Releases the files the backend keeps open for reading. A program that opens many repositories, or
   * one for a while, calls it when done (Node warns about, and will refuse, handles left to the garbage
   * collector). The repository may still be used after; it reopens what it needs.
   */
  async close(): Promise<void> {
    const states = [this.indexState, this.preloadedIndex]
    this.indexState = null
    this.preloadedIndex = null
    for (const state of states) await (await state?.catch(() => null))?.close()
    await this.backend.close?.()
  }

  async withLock<T>(fn: () => Promise<T>, options?: LockOptions): Promise<T> {
    const lock = await RepositoryLock.acquire(this.backend, options)
    try {
      return await fn()
    } finally {
      await lock.release()
    }
  }

  /** Adds an archive to the manifest under the lock. The name must be new. */
  async addArchive(ref: ArchiveRef, options?: LockOptions): Promise<void> {
    await this.withLock(async () => {
      const list = await readManifest(this.backend, this.sealer)
      if (list.some((a) => a.name === ref.name)) throw archiveExists(ref.name)
      await writeManifest(this.backend, this.sealer, [...list, ref])
    }, options)
  }

  /** Removes an archive from the manifest. Its data stays until a compaction. */
  async deleteArchive(name: string, options?: LockOptions): Promise<ArchiveRef> {
    return this.withLock(async () => {
      const list = await readManifest(this.backend, this.sealer)
      const victim = list.find((a) => a.name === name)
      if (!victim) throw new CairnError('archive-not-found', `there is no archive named ${JSON.stringify(name)} in ${this.backend.location}`, { hint: 'list the archives with: cairn list REPO' })
      await writeManifest(this.backend, this.sealer, list.filter((a) => a !== victim))
      return victim
    }, options)
  }
}

export function archiveExists(name: string): CairnError {
  return new CairnError('archive-exists', `an archive named ${JSON.stringify(name)} already exists`, { hint: 'choose another name (placeholders like {now} help)' })
}

async function readConfig(backend: Backend): Promise<RepositoryConfig> {
  let raw: Buffer
  try {
    raw = await backend.get(CONFIG_KEY)
  } catch (err) {
    if (err instanceof CairnError && err.code === 'missing-object') {
      throw new CairnError('not-a-repository', `${backend.location} is not a cairn repository`, { hint: 'check the path, or create one with: cairn init REPO' })
    }
    throw err
  }
  return decodeConfig(raw, backend.location)
}

function toBackend(location: string | Backend): Backend {
  return typeof location === 'string' ? new LocalBackend(path.resolve(location)) : location
}

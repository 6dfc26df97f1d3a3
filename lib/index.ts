/**
 * cairn's public API: what the CLI, the mount and other Node programs use.
 * Anything not exported here is internal and may change.
 */
export { CairnError, isCairnError, type CairnErrorCode, type CairnErrorOptions } from './errors.js'

export type { Backend, ObjectInfo } from './storage/backend.js'
export { LocalBackend } from './storage/local.js'

export { Repository, type RepositoryOptions, type InitOptions } from './repo/repository.js'
export { unlockWithPassphrase } from './repo/keys.js'
export type { KeyUnlocker, PassphraseSource } from './repo/keys.js'
export type { ArchiveRef } from './repo/manifest.js'
export type { EncryptionMode } from './crypto/modes.js'
export { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from './chunker/fastcdc.js'
export { parseCompressionSpec, formatCompressionSpec, type CompressionSpec } from './compress/codec.js'

export { createArchive, DEFAULT_COMPRESSION, type CreateOptions, type CreateResult, type CreateWarning, type CreateProgress } from './archive/create.js'
export { createArchiveFromEntries, type EntrySpec, type EntriesOptions } from './archive/create-from-entries.js'
export { extractArchive, type ExtractOptions, type ExtractResult, type ExtractWarning } from './archive/extract.js'
export { ArchiveReader, makeReaderCaches, type CacheSizes, type ReaderCaches, type DirRef } from './archive/reader.js'
export { FileContent } from './archive/file-content.js'
export type { Item, ItemKind, ChunkRef } from './archive/item.js'
export type { ArchiveMeta, ArchiveStats } from './archive/archive-object.js'

export type { VfsNode, DirNode, DirEntry, FileNode, SymlinkNode, SpecialNode, NodeAttr, SiblingSink } from './vfs/node.js'
export { ownedCopy } from './vfs/node.js'
export { RepositoryView, openArchiveView, type RepositoryViewOptions } from './vfs/repository-view.js'
export { PathResolver } from './vfs/path-resolver.js'
export { VersionsView, versionName, type VersionsViewOptions } from './vfs/versions-view.js'
export { BlobOpener, chunkLoader, type BlobOpenerOptions } from './cache/blob-opener.js'
export { coalescedBlobLoader } from './cache/coalescing-loader.js'
export { blockedTreeLoader } from './cache/pack-block-reader.js'

export { formatNs } from './time.js'

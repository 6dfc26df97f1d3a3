/**
 * The manifest (`manifest`): the list of archives. It is the only object
 * that is replaced in place (atomically, under the repository lock), and
 * the last thing a commit writes, so whatever it names is complete.
 *
 * Sealed msgpack: [version, [[name, archiveId, seconds, nanoseconds], ...]].
 */
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import type { Sealer } from '../crypto/sealer.js'
import type { Backend } from '../storage/backend.js'
import { fromPair, toPair } from '../time.js'
import { AAD_MANIFEST } from './blob.js'

export const MANIFEST_KEY = 'manifest'
const MANIFEST_VERSION = 1

export interface ArchiveRef {
  name: string
  /** Id of the archive blob. */
  id: Buffer
  /** When the archive was started, ns since the epoch. */
  time: bigint
}

export async function readManifest(backend: Backend, sealer: Sealer): Promise<ArchiveRef[]> {
  const stat = await backend.stat(MANIFEST_KEY)
  if (!stat) return []
  const value = unpack(sealer.open(AAD_MANIFEST, await backend.get(MANIFEST_KEY)))
  if (!Array.isArray(value) || value[0] !== MANIFEST_VERSION || !Array.isArray(value[1])) {
    throw new CairnError('integrity', `the manifest of ${backend.location} is malformed`, { hint: 'run cairn check' })
  }
  return (value[1] as unknown[]).map((row) => {
    const [name, id, seconds, nanos] = row as [string, Buffer, number, number]
    return { name, id: Buffer.from(id), time: fromPair([seconds, nanos]) }
  })
}

export async function writeManifest(backend: Backend, sealer: Sealer, archives: readonly ArchiveRef[]): Promise<void> {
  const rows = archives.map((a) => [a.name, a.id, ...toPair(a.time)])
  await backend.put(MANIFEST_KEY, sealer.seal(AAD_MANIFEST, pack([MANIFEST_VERSION, rows])))
}

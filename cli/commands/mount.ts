/**
 * `cairn mount` and `cairn umount`.
 *
 * Without -f, mount re-runs itself detached with -f and an IPC channel, and
 * waits: the child sends the repository's sealed key over the channel and
 * the parent unlocks it (asking for the passphrase on its terminal if need
 * be: the child has none) and sends the key back, so the scrypt KDF's 64 MiB
 * never count in the long-lived child's peak memory; then the child sends
 * "ready" once the kernel has the mount, or the error that stopped it; the
 * parent exits 0, or 2 with that error's one line. With -f it serves in
 * the foreground until Ctrl-C or SIGTERM (or an unmount from outside), then
 * unmounts and exits 0.
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import * as path from 'node:path'
// Light imports only: the detaching parent loads neither the library nor the
// mount (see cli/main.ts); serve() and umount load them when they run, and the
// parent only the key module, to unlock the child's key.
import { CairnError, isCairnError, type CairnErrorCode } from '../../lib/errors.js'
import { parseMountOptions, type MountOptionSet } from '../../mount/options.js'
import type { Command, CommandContext } from '../command.js'
import type { Environment } from '../environment.js'
import { EXIT_OK, usageError } from '../exit.js'
import { parseLocation, type Location } from '../location.js'
import { passphraseSource } from '../passphrase.js'
import { holdMallocThresholds, releaseStartupPages } from '../process-memory.js'
import type { KeyMaterial } from '../../lib/crypto/key-material.js'

/** Key material crosses the channel as hex (the channel speaks JSON). */
type WireKey = { encKey: string; macKey: string; chunkerSeed: string }
type ParentMessage = { type: 'key'; key: WireKey } | { type: 'key-error'; code: CairnErrorCode; message: string; hint?: string }
type ChildMessage = { type: 'unlock-key'; envelope: string; repoId: string } | { type: 'ready'; mountpoint: string } | { type: 'error'; code: CairnErrorCode; message: string; hint?: string }

const recordDir = (env: Environment): string => path.join(env.cacheDir, 'mounts')

/**
 * The detached mount process lives long and its memory should stay small: a young generation of 1 MiB
 * semi-spaces instead of V8's 16 MiB, and an old generation that grows by half instead of about double
 * between collections. Peak resident after walking the medium corpus's archive, 3 cold runs each: 159–166
 * MiB with 4 MiB semi-spaces alone, 137–153 MiB with both, and the walk no slower (1.50–1.68 s against
 * 1.56–1.98 s): the daemon waits on its clients half the time, so the extra collections are not felt.
 * Later, with the rest of the daemon smaller, 1 MiB semi-spaces against 2 MiB: 66–70 MiB (median 66)
 * against 68–71 (median 70), 5 alternated runs each, the walk (1.07 s against 1.14 s, medians) and a cold
 * read of the 1 GiB file (662–740 MiB/s against 646–685) as fast.
 * They come after the flags node was started with (the `cairn` launcher's 4 MiB semi-spaces), and win.
 */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--heap-growing-percent=50']

/**
 * glibc's malloc asked to back its heaps and big blocks with transparent huge pages (glibc 2.35 and later;
 * older ones ignore the tunable): set for the detached daemon, which starts with it. On a VM whose page
 * faults cost about 25 µs, a walk and a cold cp -a of small files spent thousands of faults on fresh heap
 * pages (what the binding stages, the buffers chunks decompress into, V8's compiler zones in the threads'
 * arenas). Three alternated `bench/mount-ab.mjs` runs of 5–6 each against the build before: the daemon's
 * faults in cp -a 5,150–5,470 → 3,060–3,320 and the copy 0.81 / 0.77 / 0.70 → 0.74 / 0.73 / 0.67 s, walks
 * 1.84 / 1.65 / 1.65 → 1.82 / 1.59 / 1.53 s, cold reads 237 / 237 / 246 → 219 / 244 / 259 MiB/s, VmHWM after
 * the walk 62 → 63 MiB (bench/RESULTS.md, session 17). hugePageBuffer keeps the tunable off the partly used
 * end of its buffers. A GLIBC_TUNABLES of the user's that names it wins.
 */
const DAEMON_MALLOC_TUNABLE = 'glibc.malloc.hugetlb=1'

function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = env.GLIBC_TUNABLES
  if (tunables?.includes('glibc.malloc.hugetlb=')) return env
  return { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:${DAEMON_MALLOC_TUNABLE}` : DAEMON_MALLOC_TUNABLE }
}

export const mount: Command = {
  name: 'mount',
  usage: 'mount [-f] [-o OPTIONS] REPO[::ARCHIVE] MOUNTPOINT',
  summary: 'mount the archives (or one archive) as a read-only file system; -o versions, allow_other, uid=, gid=, umask=, ignore_permissions, cache_size=, allow_damaged_files, log=FILE',
  options: {
    foreground: { type: 'boolean', short: 'f' },
    options: { type: 'string', short: 'o', multiple: true },
  },
  async run(ctx) {
    const { values, positionals, env } = ctx
    if (positionals.length < 1 || positionals.length > 2) throw usageError('mount needs REPO[::ARCHIVE] and MOUNTPOINT')
    const loc = parseLocation(positionals.length === 2 ? positionals[0] : undefined, env.repo)
    const mountpoint = path.resolve(positionals[positionals.length - 1]!)
    const opts = parseMountOptions((values.options as string[] | undefined) ?? [])
    if (opts.log !== undefined) opts.log = path.resolve(opts.log)
    if (opts.versions && loc.archive !== undefined) throw usageError('-o versions merges all archives: mount REPO, not REPO::ARCHIVE')
    return values.foreground ? serve(ctx, loc, mountpoint, opts) : detach(ctx, loc, mountpoint)
  },
}

export const umount: Command = {
  name: 'umount',
  usage: 'umount [-z] MOUNTPOINT',
  summary: 'unmount a cairn mount, also one whose mount process died (-z: detach it even while in use)',
  options: { lazy: { type: 'boolean', short: 'z' } },
  async run({ values, positionals, env, err }) {
    if (positionals.length !== 1) throw usageError('umount needs MOUNTPOINT')
    const { unmountPath } = await import('../../mount/index.js')
    const result = await unmountPath(positionals[0]!, { recordDir: recordDir(env), lazy: Boolean(values.lazy) })
    if (result.state === 'dead') {
      err(`cairn: the mount process${result.pid !== null ? ` (pid ${result.pid})` : ''} had died; removed its dead mount at ${result.mountpoint}\n`)
    }
    return EXIT_OK
  },
}

/** Serves the mount in this process until a signal or an unmount from outside. */
async function serve(ctx: CommandContext, loc: Location, mountpoint: string, opts: MountOptionSet): Promise<number> {
  const { env, signal } = ctx
  const parent = typeof process.send === 'function' ? process : null
  const logger = openLog(opts.log, ctx.err)
  const tell = (msg: ChildMessage): void => void parent?.send?.(msg)
  try {
    // Only the repository's module before the KDF starts (40 ms less than the whole library from a cold cache).
    const { Repository } = await import('../../lib/repo/repository.js')
    await holdMallocThresholds() // before the big blocks of opening the repository are freed
    const opening = Repository.open({
      location: loc.repo,
      passphrase: passphraseSource(env, false),
      unlockKey: parent ? (envelope, repoId) => unlockInParent(parent, envelope, repoId) : undefined,
      configDir: env.configDir,
      cacheDir: env.cacheDir,
      signal,
      preloadIndex: 'lookups',
    })
    opening.catch(() => undefined) // awaited below
    // The mount's modules load while the passphrase's KDF runs on the thread pool.
    const { mountRepository } = await import('../../mount/index.js')
    const repository = await opening
    signal.throwIfAborted()
    const mounted = await mountRepository({
      repository,
      archive: loc.archive,
      mountpoint,
      versions: opts.versions,
      allowOther: opts.allowOther,
      uid: opts.uid,
      gid: opts.gid,
      umask: opts.umask,
      ignorePermissions: opts.ignorePermissions,
      cacheBytes: opts.cacheBytes,
      allowDamagedFiles: opts.allowDamagedFiles,
      recordDir: recordDir(env),
      log: logger.log,
    })
    logger.log(`mounted ${loc.repo}${loc.archive !== undefined ? `::${loc.archive}` : ''} at ${mounted.mountpoint} (pid ${process.pid})`)
    tell({ type: 'ready', mountpoint: mounted.mountpoint })
    parent?.disconnect?.()
    releaseStartupPages(logger.log)

    const stop = new Promise<string>((resolve) => {
      if (signal.aborted) resolve('signal')
      signal.addEventListener('abort', () => resolve('signal'), { once: true })
      void mounted.closed.then(() => resolve('unmounted from outside'))
    })
    const why = await stop
    // A second Ctrl-C must not kill us halfway through unmounting (that would leave a dead mount).
    const ignore = (): void => undefined
    process.on('SIGINT', ignore)
    process.on('SIGTERM', ignore)
    await mounted.unmount()
    logger.log(`unmounted ${mounted.mountpoint} (${why})`)
    return EXIT_OK
  } catch (err) {
    if (parent?.connected) {
      const e = isCairnError(err) ? err : new CairnError('mount-failed', (err as Error)?.message ?? String(err))
      tell({ type: 'error', code: e.code, message: e.message, hint: e.hint })
      parent.disconnect?.()
    }
    throw err
  } finally {
    await logger.close()
  }
}

function unlockInParent(parent: NodeJS.Process, envelope: Buffer, repoId: string): Promise<KeyMaterial> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: ParentMessage): void => {
      parent.off('message', onMessage)
      if (msg.type === 'key') resolve({ encKey: Buffer.from(msg.key.encKey, 'hex'), macKey: Buffer.from(msg.key.macKey, 'hex'), chunkerSeed: Buffer.from(msg.key.chunkerSeed, 'hex') })
      else reject(new CairnError(msg.code, msg.message, { hint: msg.hint }))
    }
    parent.on('message', onMessage)
    parent.send?.({ type: 'unlock-key', envelope: envelope.toString('hex'), repoId } satisfies ChildMessage)
  })
}

/** The parent's side of unlockInParent: the passphrase (env, command or prompt) and the KDF run here. */
async function unlockForChild(env: Environment, msg: Extract<ChildMessage, { type: 'unlock-key' }>): Promise<ParentMessage> {
  try {
    const { unlockWithPassphrase } = await import('../../lib/repo/keys.js')
    const km = await unlockWithPassphrase(passphraseSource(env, false))(Buffer.from(msg.envelope, 'hex'), msg.repoId)
    const key = { encKey: km.encKey.toString('hex'), macKey: km.macKey.toString('hex'), chunkerSeed: km.chunkerSeed.toString('hex') }
    for (const secret of [km.encKey, km.macKey, km.chunkerSeed]) secret.fill(0)
    return { type: 'key', key }
  } catch (err) {
    const e = isCairnError(err) ? err : new CairnError('no-passphrase', (err as Error)?.message ?? String(err))
    return { type: 'key-error', code: e.code, message: e.message, hint: e.hint }
  }
}

/** An answer to the child's unlock-key request, for the envelope and repository it names. */
interface KeyAhead {
  envelope: string
  repoId: string
  reply: Promise<ParentMessage>
}

/**
 * The key the child is going to ask for, derived while it starts: before, the KDF began only once the
 * child's node had started, loaded its modules and read the envelope. The child's envelope and repository
 * id are compared before this answer is used. Anything that fails here (no repository, no key file) is
 * left for the child to meet and report, so no passphrase is asked for a repository that cannot be read.
 */
async function unlockAhead(env: Environment, repo: string): Promise<KeyAhead | null> {
  try {
    const { Repository } = await import('../../lib/repo/repository.js')
    const sealed = await Repository.keyEnvelope(repo, env.configDir)
    if (sealed === null) return null
    const msg = { type: 'unlock-key', envelope: sealed.envelope.toString('hex'), repoId: sealed.repoId } as const
    return { envelope: msg.envelope, repoId: msg.repoId, reply: unlockForChild(env, msg) }
  } catch {
    return null
  }
}

/** Starts `cairn mount -f ...` detached and waits until it is mounted or has failed. */
async function detach(ctx: CommandContext, loc: Location, mountpoint: string): Promise<number> {
  const { env, signal } = ctx
  const repoArg = `${path.resolve(loc.repo)}${loc.archive !== undefined ? `::${loc.archive}` : ''}`
  const oArgs = ((ctx.values.options as string[] | undefined) ?? []).flatMap((spec) => ['-o', absoluteLog(spec)])
  const child = spawn(process.execPath, [...process.execArgv, ...DAEMON_NODE_FLAGS, process.argv[1]!, 'mount', '--foreground', ...oArgs, '--', repoArg, mountpoint], {
    detached: true,
    cwd: '/',
    env: daemonEnv(process.env),
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  })
  const ahead = unlockAhead(env, path.resolve(loc.repo))
  return new Promise<number>((resolve, reject) => {
    let settled = false
    const settle = (fn: () => void): void => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      fn()
    }
    const onAbort = (): void => settle(() => {
      child.kill('SIGTERM')
      reject(Object.assign(new Error('interrupted'), { name: 'AbortError' }))
    })
    signal.addEventListener('abort', onAbort, { once: true })
    child.on('message', (msg: ChildMessage) => {
      if (msg.type === 'unlock-key') {
        void ahead
          .then((a) => (a !== null && a.envelope === msg.envelope && a.repoId === msg.repoId ? a.reply : unlockForChild(env, msg)))
          .then((reply) => child.connected && child.send(reply))
      } else if (msg.type === 'ready') {
        settle(() => {
          child.disconnect()
          child.unref()
          resolve(EXIT_OK)
        })
      } else if (msg.type === 'error') {
        settle(() => reject(new CairnError(msg.code, msg.message, { hint: msg.hint })))
      }
    })
    child.on('error', (err) => settle(() => reject(new CairnError('mount-failed', `could not start the mount process: ${err.message}`))))
    child.on('exit', (code, sig) => settle(() => reject(new CairnError('mount-failed', `the mount process ended (${sig ?? `exit code ${code}`}) before the mount was ready`, {
      hint: 'run it in the foreground to see why: cairn mount -f ...',
    }))))
  })
}

/** The child runs in /: make a relative log= path absolute. */
function absoluteLog(spec: string): string {
  return spec.split(',').map((part) => (part.trim().startsWith('log=') ? `log=${path.resolve(part.trim().slice(4))}` : part)).join(',')
}

/** Log lines with a time stamp, to a file (appended) or to stderr. */
function openLog(file: string | undefined, err: (data: string) => void): { log: (message: string) => void; close: () => Promise<void> } {
  const stream = file === undefined ? null : createWriteStream(file, { flags: 'a', mode: 0o600 })
  stream?.on('error', () => undefined)
  const write = stream ? (line: string) => void stream.write(line) : err
  return {
    log: (message) => write(`${new Date().toISOString()} cairn mount[${process.pid}]: ${message}\n`),
    close: () => new Promise<void>((resolve) => (stream ? stream.end(resolve) : resolve())),
  }
}

/**
 * What the mount tests share: running the CLI's mount in its own process (this process is only ever a
 * client), bounding every client call with a timeout, and removing every mount in teardown whatever
 * happened (cairn umount, then forceUnmount with the connection aborted).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import * as path from 'node:path'
import type { Test } from 'tap'
import { CLI, cairn, type CliResult } from '../../helpers/cli.js'
import { findMount, forceUnmount } from '../../../mount/fuse-binding.js'

export const CLIENT_TIMEOUT = 30_000

/** Any client call, bounded: a hung mount fails the test instead of hanging it. */
export function client<T>(what: string, p: Promise<T>, ms = CLIENT_TIMEOUT): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export interface Ran {
  code: number
  stdout: Buffer
  stderr: string
}

/** A command as a client, with its output as bytes. */
export function sh(cmd: string, args: string[], options: { cwd?: string; ms?: number } = {}): Promise<Ran> {
  const ms = options.ms ?? CLIENT_TIMEOUT
  return client(`${cmd} ${args.join(' ')}`, new Promise<Ran>((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: ms, killSignal: 'SIGKILL', cwd: options.cwd, maxBuffer: 256 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr: stderr.toString() }))
  }), ms + 5000)
}

export function mountpointIn(dir: string, name = 'mnt'): string {
  const mp = path.join(dir, name)
  mkdirSync(mp, { recursive: true })
  return mp
}

export interface Foreground {
  child: ChildProcess
  stderr: () => string
  exited: Promise<number | null>
}

/** Registers the teardown that leaves no mount and no mount process behind. */
export function cleanUpMounts(t: Test, env: Record<string, string | undefined>): { track: (mp: string, child?: ChildProcess) => void } {
  const mounts = new Set<string>()
  const children = new Set<ChildProcess>()
  t.teardown(async () => {
    for (const mp of mounts) {
      if (await findMount(mp)) await cairn(['umount', '-z', mp], { env, timeoutMs: 15_000 }).catch(() => undefined)
      if (await findMount(mp)) await forceUnmount(mp, { abort: true }).catch(() => undefined)
    }
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return {
    track: (mp, child) => {
      mounts.add(mp)
      if (child) children.add(child)
    },
  }
}

/**
 * `cairn mount -f ...` in a child process; resolves once the kernel has the mount and the process says it
 * is mounted (its record for `cairn umount` is written between the two).
 */
export async function mountForeground(args: string[], mp: string, env: Record<string, string | undefined>, track: (mp: string, child?: ChildProcess) => void): Promise<Foreground> {
  const cleanEnv = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv
  const child = spawn(process.execPath, [CLI, 'mount', '-f', ...args, mp], { env: cleanEnv, stdio: ['ignore', 'ignore', 'pipe'] })
  track(mp, child)
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const ready = (async () => {
    while (!(await findMount(mp)) || !/: mounted .* at /.test(err)) {
      if (child.exitCode !== null) throw new Error(`mount -f exited with ${child.exitCode}: ${err}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  await client('mount -f', ready, 60_000)
  return { child, stderr: () => err, exited }
}

/** `cairn mount ...` (detaching); the CLI returns once the mount is ready. */
export async function mountDetached(args: string[], mp: string, env: Record<string, string | undefined>, track: (mp: string) => void): Promise<CliResult> {
  track(mp)
  return cairn(['mount', ...args, mp], { env, timeoutMs: 60_000 })
}

/** Polls `probe` until it is true or `ms` pass. */
export async function eventually(probe: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await probe()) return true
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 200))
  }
}

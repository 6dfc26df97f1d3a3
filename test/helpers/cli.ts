/** Runs the built cairn CLI in a child process, with an isolated cache and config dir. */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI = path.join(ROOT, 'dist/cli/main.js')

export interface CliResult {
  code: number | null
  stdout: Buffer
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  input?: Buffer | string
  timeoutMs?: number
}

/** A fresh environment per test: its own cache/config dir and a passphrase. */
export function testEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const home = scratch('cairn-home-')
  return {
    PATH: process.env.PATH,
    HOME: home,
    CAIRN_CACHE_DIR: path.join(home, 'cache'),
    CAIRN_CONFIG_DIR: path.join(home, 'config'),
    CAIRN_PASSPHRASE: 'correct horse battery staple',
    ...extra,
  }
}

export function cairn(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(options.env ?? testEnv()).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv
    const child = spawn(process.execPath, [CLI, ...args], { env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() })
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
  })
}

const scratchDirs: string[] = []

/** A fresh directory, removed when the test process exits (a corpus copy is hundreds of MB). */
export function scratch(prefix = 'cairn-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix))
  if (scratchDirs.push(dir) === 1) process.once('exit', removeScratchDirs)
  return dir
}

/**
 * Never recurses into a mount: a directory holding one (a test that could
 * not unmount) is left for the run's own cleanup to unmount first.
 */
function removeScratchDirs(): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4] ?? '')
  for (const dir of scratchDirs) {
    if (mounts.some((m) => m === dir || m.startsWith(dir + '/'))) continue
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // left behind: only disk space
    }
  }
}

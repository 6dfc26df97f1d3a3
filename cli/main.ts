#!/usr/bin/env node
/**
 * The cairn command line: parses the command, runs it against the library's
 * public API, and turns the outcome into an exit code (0 ok, 1 warning,
 * 2 error) with one line on stderr for errors.
 */
import { parseArgs } from 'node:util'
import type { Command } from './command.js'
import { readEnvironment } from './environment.js'
import { EXIT_ERROR, EXIT_OK, reportError, usageError } from './exit.js'
/**
 * Each command's module is loaded only when that command runs: the library
 * takes about 0.1 s to load, and `cairn mount`'s parent process, which only
 * waits for its detached child, needs none of it (the mount's first listing
 * pays for both processes' start).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  init: async () => (await import('./commands/init.js')).init,
  create: async () => (await import('./commands/create.js')).create,
  list: async () => (await import('./commands/list.js')).list,
  info: async () => (await import('./commands/info.js')).info,
  extract: async () => (await import('./commands/extract.js')).extract,
  delete: async () => (await import('./commands/delete.js')).remove,
  'break-lock': async () => (await import('./commands/break-lock.js')).breakLock,
  mount: async () => (await import('./commands/mount.js')).mount,
  umount: async () => (await import('./commands/mount.js')).umount,
}

async function help(): Promise<string> {
  const commands = await Promise.all(Object.values(COMMANDS).map((load) => load()))
  const width = Math.max(...commands.map((c) => c.name.length))
  return [
    'usage: cairn COMMAND [options] ...',
    '',
    'Deduplicating, encrypted, compressed backups you can mount.',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'cairn COMMAND --help shows the options of a command.',
    'Environment: CAIRN_REPO, CAIRN_PASSPHRASE, CAIRN_PASSCOMMAND, CAIRN_CACHE_DIR, CAIRN_CONFIG_DIR, CAIRN_FILES_CACHE_TTL, CAIRN_DEBUG.',
    'Exit codes: 0 ok, 1 warning, 2 error.',
    '',
  ].join('\n')
}

function commandHelp(c: Command): string {
  const opts = Object.entries(c.options).map(([name, o]) => `  ${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' VALUE' : ''}${o.default !== undefined ? ` (default ${String(o.default)})` : ''}`)
  return [`usage: cairn ${c.usage}`, '', c.summary, ...(opts.length ? ['', 'options:', ...opts] : []), ''].join('\n')
}

async function main(argv: string[]): Promise<number> {
  const debug = process.env.CAIRN_DEBUG === '1'
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await help())
    return name === undefined ? EXIT_ERROR : EXIT_OK
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write('cairn 0.1.0\n')
    return EXIT_OK
  }
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
    if (!load) throw usageError(`unknown command ${JSON.stringify(name)}`)
    const command = await load()
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(commandHelp(command))
      return EXIT_OK
    }
    let parsed
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true })
    } catch (err) {
      throw usageError(`${(err as Error).message.split('\n')[0]} (cairn ${command.usage})`)
    }
    return await command.run({
      values: parsed.values as Record<string, unknown>,
      positionals: parsed.positionals,
      env: readEnvironment(),
      out: (data) => process.stdout.write(data),
      err: (data) => process.stderr.write(data),
      signal: controller.signal,
      argv: ['cairn', ...argv],
    })
  } catch (err) {
    return reportError(err, debug)
  }
}

const code = await main(process.argv.slice(2))
// Let stdout drain before exiting, so piped output is complete.
process.stdout.write('', () => process.exit(code))

import { Repository } from '../../lib/index.js'
import type { Command } from '../command.js'
import { EXIT_OK } from '../exit.js'
import { parseLocation } from '../location.js'

export const breakLock: Command = {
  name: 'break-lock',
  usage: 'break-lock REPO',
  summary: 'remove a lock left behind by a cairn that is gone',
  options: {},
  async run({ positionals, env, out }) {
    const loc = parseLocation(positionals[0], env.repo)
    const removed = await Repository.breakLock(loc.repo)
    out(removed ? 'Lock removed.\n' : 'The repository was not locked.\n')
    return EXIT_OK
  },
}

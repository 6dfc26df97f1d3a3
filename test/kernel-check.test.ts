/** cairn's mount needs Linux 5.1 or later (OPENDIR answered ENOSYS, see mount/native/lowlevel.c): older kernels get a clear refusal. */
import t from 'tap'
import { kernelProblem } from '../dist/mount/fuse-binding.js'

t.test('kernels from 5.1 on are accepted, older ones refused with a reason', async (t) => {
  for (const ok of ['5.1.0', '5.10.0-28-amd64', '6.1.0-18-cloud-amd64', '6.18.44-fc-v669', '10.0.0', 'unknown']) t.equal(kernelProblem(ok), undefined, ok)
  for (const old of ['5.0.21', '4.19.0-25-amd64', '3.10.0-1160.el7.x86_64']) t.match(kernelProblem(old), /Linux 5\.1 or later, this is /, old)
})

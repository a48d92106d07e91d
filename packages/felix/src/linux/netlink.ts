// Which way the agent talks to the kernel's routing tables: netlink when the native
// addon loads (said once at startup), else `ip` processes, with the reason.
import { netlinkAvailability, Rtnl } from '@tortie/netlink';
import type { Logger } from 'winston';

export function openNetlink(log: Logger, netns?: string): Rtnl | undefined {
  const a = netlinkAvailability();
  if (!a.available) {
    log.warn('routes are programmed with ip processes: netlink is unavailable', {
      reason: a.reason,
    });
    return undefined;
  }
  try {
    const nl = Rtnl.open(netns);
    log.info('routes are programmed over netlink');
    return nl;
  } catch (e) {
    log.warn('routes are programmed with ip processes: netlink is unavailable', {
      reason: (e as Error).message,
    });
    return undefined;
  }
}

/** Build a network backend from a command-line specification (see spec.ts for the forms). */
import type { NetBackend } from './backend.js';
import { SocketBackend } from './socket.js';
import { parseNetSpec, type NetSpec } from './spec.js';
import { TapBackend } from './tap.js';
import { UserNetwork, type UserNetworkOptions } from './user/user-network.js';

export interface CreateNetBackendOptions {
  log?: (message: string) => void;
  /** Extra options for the user-mode network (e.g. dnsServers); the spec's net/hostfwd take precedence. */
  user?: Omit<UserNetworkOptions, 'network' | 'prefixLength' | 'hostForwards' | 'restrict'>;
}

export async function createNetBackend(spec: string | NetSpec, options: CreateNetBackendOptions = {}): Promise<NetBackend> {
  const s = typeof spec === 'string' ? parseNetSpec(spec) : spec;
  const log = options.log;
  switch (s.kind) {
    case 'user':
      return UserNetwork.create({
        ...(log ? { log } : {}),
        ...options.user,
        network: s.network,
        prefixLength: s.prefixLength,
        hostForwards: s.hostForwards,
        restrict: s.restrict,
      });
    case 'tap':
      return TapBackend.open(s.ifname, log ? { log } : {});
    case 'socket':
      return s.mode === 'listen'
        ? SocketBackend.listen(s.host, s.port, log ? { log } : {})
        : SocketBackend.connect(s.host, s.port, log ? { log } : {});
  }
}
